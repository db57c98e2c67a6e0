//! The worker's pool of VUs: connections added and retired as stages and
//! the autoscaler move the VU count, removed (their VU number, budget
//! ticket and open-model place given back), parked between open-model
//! sends and handed the sends as they fall due; and the request budget's
//! tickets (a request counts against the budget from its start).

use super::{Msg, Worker};
use crate::budget::Tickets;
use crate::conn::{Conn, State};
use crate::flow::FlowVu;
use crate::open::OpenState;
use crate::plan::{EndpointPlan, Plan, worker_share, worker_share_packed};
use crate::protocol::Session;
use crate::stats::{EndpointStats, micros};
use crate::timer::later;
use std::time::Instant;

/// How many workers carry an open-model endpoint: all of them, unless it
/// may hold fewer connections than there are workers.
pub(super) fn open_stride(plan: &Plan, e: &EndpointPlan) -> u64 {
    let most = e
        .autoscale
        .map_or(e.open.as_ref().map_or(0, |o| o.max_vus), |a| a.max_workers);
    (plan.workers as u64).min(most.max(1) as u64)
}

/// Worker `id`'s share of open-model endpoint `e` (index `ep`), if it has one.
pub(super) fn open_share(plan: &Plan, e: &EndpointPlan, id: usize, ep: usize) -> Option<OpenState> {
    let o = e.open.as_ref()?;
    let stride = open_stride(plan, e);
    // Rotate by the endpoint index so small endpoints spread over workers.
    let position = ((id + plan.workers - ep % plan.workers) % plan.workers) as u64;
    if position >= stride {
        return None;
    }
    let total = if e.autoscale.is_some() {
        e.initial_workers
    } else {
        o.max_vus
    };
    let cap = worker_share(total, stride as usize, position as usize, 0).max(1);
    // a shard makes its sends of the schedule (see `OpenPlan::slot`)
    let (at, of) = o.slot?;
    let (position, stride) = (position * of + at, stride * of);
    Some(OpenState::new(o.stages.clone(), position, stride, cap))
}

impl Worker {
    /// Takes a budget ticket for connection `idx`'s next request unless it
    /// holds one; false when the budget is spent.
    #[inline]
    pub(super) fn ticket(&mut self, idx: usize) -> bool {
        let c = self.conns[idx].as_mut().expect("a live connection");
        if !c.ticket {
            c.ticket = self.tickets.as_mut().is_none_or(Tickets::take);
        }
        c.ticket
    }

    /// Connection `idx` found the budget spent: it ends, and so does the
    /// worker's load.
    pub(super) fn out_of_tickets(&mut self, idx: usize, now: Instant) {
        self.remove(idx);
        self.spend(now);
        self.end_if_spent(now);
    }

    /// The request budget is spent: connections that carry no counted
    /// request close now; the others close as their request ends (see
    /// [`Worker::complete`], [`Worker::fail`]).
    pub(super) fn spend(&mut self, now: Instant) {
        if self.spent {
            return;
        }
        self.spent = true;
        let _ = self.to_aggregator.send(Msg::Spent);
        for idx in 0..self.conns.len() {
            if self.conns[idx]
                .as_ref()
                .is_some_and(|c| c.state != State::Awaiting && !c.ticket)
            {
                self.remove(idx);
            }
        }
        self.end_if_spent(now);
    }

    /// With the budget spent, the worker ends once its last request has.
    pub(super) fn end_if_spent(&mut self, now: Instant) {
        if self.spent && self.live == 0 {
            self.stop(now);
        }
    }

    /// Brings each endpoint's connections on this worker to its share of
    /// `total` VUs (or of its autoscaled count).
    pub(super) fn adjust(&mut self, total: u32, now: Instant) {
        if self.spent {
            return;
        }
        let per_endpoint = self.plan.distribute(total);
        for (ep, n) in per_endpoint.into_iter().enumerate() {
            if let Some(open) = &self.open[ep] {
                // Open model: connections open on demand up to the cap.
                if self.active[ep] > open.cap {
                    self.retire(ep, self.active[ep] - open.cap, now);
                }
                continue;
            }
            let n = self.scaled[ep].unwrap_or(n);
            // an HTTP/2 row's VUs go by whole connections
            let streams = self.plan.endpoints[ep].streams;
            let want = worker_share_packed(n, streams, self.plan.workers, self.id, ep);
            let have = self.active[ep];
            for _ in have..want {
                self.add(ep, now, None);
            }
            if want < have {
                self.retire(ep, have - want, now);
            }
        }
    }

    /// Opens a connection for `ep`; an open-model one carrying the send
    /// due at `intended`, if any. Returns its slab index.
    pub(super) fn add(&mut self, ep: usize, now: Instant, intended: Option<Instant>) -> usize {
        let e = &self.plan.endpoints[ep];
        let mut session = Session::h1();
        session.collect_timing(e.server_timing);
        session.keep(
            e.keep_head,
            e.keep_body.then_some(self.plan.max_capture_body),
        );
        let flow = e
            .step
            .as_ref()
            .map(|s| Box::new(FlowVu::new(self.plan.flows[s.flow].vars.len(), now)));
        let number = self.counters.vu_numbers.take();
        let sets = self.plan.data.len();
        let conn = Conn::new(ep, number, sets, flow, session, now, intended);
        let idx = match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(conn);
                i
            }
            None => {
                self.conns.push(Some(conn));
                self.gens.push(0);
                self.conns.len() - 1
            }
        };
        self.active[ep] += 1;
        self.peak[ep] = self.peak[ep].max(self.active[ep]);
        self.live += 1;
        self.connect(idx, now);
        idx
    }

    /// Retires `n` connections of `ep`: idle ones now, busy ones after their
    /// response (a flow VU after its iteration).
    pub(super) fn retire(&mut self, ep: usize, mut n: u32, now: Instant) {
        for busy in [false, true] {
            for idx in 0..self.conns.len() {
                if n == 0 {
                    return;
                }
                let Some(c) = self.conns[idx].as_mut() else {
                    continue;
                };
                // a VU inside a flow iteration leaves once the iteration ends
                let in_use = c.state == State::Awaiting || c.mid_iteration();
                if c.ep != ep || c.retire || in_use != busy {
                    continue;
                }
                if busy {
                    c.retire = true;
                    self.active[ep] -= 1;
                    if let Some(f) = c.flow.as_deref_mut().filter(|f| f.begun) {
                        f.leave_by = Some(later(now, self.plan.graceful_ramp_down));
                    }
                } else {
                    self.remove(idx);
                }
                n -= 1;
            }
        }
    }

    pub(super) fn remove(&mut self, idx: usize) {
        if self.conns[idx].is_some() {
            self.h2_detach(idx);
        }
        if let Some(c) = self.conns[idx].take() {
            // A flow VU stopped between steps: its iteration is cut off.
            if let (Some(f), Some(step)) = (&c.flow, &self.plan.endpoints[c.row].step)
                && f.begun
            {
                self.flow_stats[step.flow].interrupted += 1;
            }
            if !c.retire {
                self.active[c.ep] -= 1;
            }
            self.counters.vu_numbers.give(c.number);
            if c.ticket
                && let Some(t) = self.tickets.as_mut()
            {
                t.give_back();
            }
            if c.state == State::Idle
                && let Some(open) = self.open[c.ep].as_mut()
            {
                open.idle.retain(|&i| i != idx);
            }
            self.live -= 1;
            self.gens[idx] = self.gens[idx].wrapping_add(1);
            self.free.push(idx);
        }
    }

    pub(super) fn conn(&mut self, idx: usize) -> &mut Conn {
        self.conns[idx].as_mut().expect("a live connection")
    }

    /// Opens each open-model endpoint's share of `pre_allocated_vus`, so the
    /// first sends find connections ready.
    pub(super) fn preallocate(&mut self, now: Instant) {
        for ep in 0..self.open.len() {
            let (Some(open), Some(o)) = (&self.open[ep], &self.plan.endpoints[ep].open) else {
                continue;
            };
            let stride = open_stride(&self.plan, &self.plan.endpoints[ep]) as usize;
            let position =
                (self.id + self.plan.workers - ep % self.plan.workers) % self.plan.workers;
            let n = worker_share(o.pre_allocated, stride, position, 0).min(open.cap);
            for _ in 0..n {
                self.add(ep, now, None);
            }
        }
    }

    /// An open-model connection between sends waits in its endpoint's idle list.
    pub(super) fn park(&mut self, idx: usize) {
        let c = self.conns[idx].as_mut().expect("a live connection");
        c.state = State::Idle;
        c.intended = None;
        if let Some(open) = self.open[c.ep].as_mut() {
            open.idle.push(idx);
        }
    }

    /// Hands waiting sends of open-model endpoint `ep` to idle connections,
    /// opening new ones up to the cap.
    pub(super) fn dispatch(&mut self, ep: usize, now: Instant) {
        if self.stopping.is_some() || self.spent {
            return;
        }
        loop {
            let Some(open) = self.open[ep].as_mut() else {
                return;
            };
            if open.pending() == 0 || (open.idle.is_empty() && self.active[ep] >= open.cap) {
                return; // nothing due, or every connection busy: the sends wait
            }
            if !self.tickets.as_mut().is_none_or(Tickets::take) {
                return self.spend(now);
            }
            let open = self.open[ep].as_mut().expect("checked above");
            let at = self.start + open.take().expect("pending");
            let idle = open.idle.pop();
            // k6's `http_req_blocked`: how long the send waited for a
            // connection (the pump's clock, no read of its own)
            let blocked = micros(now.saturating_duration_since(at));
            EndpointStats::record_phase(&mut self.stats[ep].blocked, blocked);
            if let Some(idx) = idle {
                let c = self.conn(idx);
                c.intended = Some(at);
                c.ticket = true;
                self.send_request(idx, now);
            } else {
                self.add(ep, now, Some(at));
            }
        }
    }

    /// Moves due sends of every open-model endpoint into their backlogs,
    /// drops those too old to start, and dispatches. Returns when the next
    /// send falls due, for the poll timeout.
    pub(super) fn pump_open(&mut self, now: Instant) -> Option<Instant> {
        let elapsed = now.saturating_duration_since(self.start);
        let cutoff = elapsed.saturating_sub(self.plan.request_timeout);
        let mut next: Option<Instant> = None;
        for ep in 0..self.open.len() {
            let Some(open) = self.open[ep].as_mut() else {
                continue;
            };
            open.advance(elapsed);
            self.stats[ep].dropped += open.drop_before(cutoff);
            self.dispatch(ep, now);
            let Some(open) = self.open[ep].as_ref() else {
                continue;
            };
            // the next send, and the moment the oldest waiting one must drop
            let due = [
                open.next_due(),
                open.oldest().map(|at| at + self.plan.request_timeout),
            ];
            for at in due.into_iter().flatten() {
                let at = self.start + at;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    }
}
