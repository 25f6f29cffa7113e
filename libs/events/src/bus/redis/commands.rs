//! The Redis commands the bus sends, and how their entries become messages.
//!
//! Kept apart from the connection handling so the wire format (field names,
//! arguments) reads in one place.

use std::time::Duration;

use redis::streams::StreamId;
use redis::{Cmd, cmd};

use crate::bus::{DeadLetter, Delivery, Message};
use crate::connection::Command;

/// One call of the bus: what errors call it, and the command spans and
/// metrics name.
#[derive(Clone, Copy, Debug)]
pub(super) struct Op {
    pub what: &'static str,
    pub command: Command,
}

const fn op(what: &'static str, name: &'static str, polling: bool) -> Op {
    Op {
        what,
        command: Command { name, polling },
    }
}

pub(super) const PING: Op = op("ping", "PING", false);
/// A batch of `XADD`s in one transaction.
pub(super) const PUBLISH: Op = op("publish", "XADD", false);
/// Sent before every poll: polling.
pub(super) const ENSURE_GROUP: Op = op("ensure_group", "XGROUP", true);
pub(super) const ACK: Op = op("ack", "XACK", false);
/// `XADD` to the dead letters and `XACK`, in one transaction.
pub(super) const DEAD_LETTER: Op = op("dead_letter", "MULTI", false);
pub(super) const DEAD_LETTERS: Op = op("dead_letters", "XREVRANGE", false);
/// Lag is measured every few seconds by every consumer: polling.
pub(super) const LAG_GROUPS: Op = op("lag (XINFO GROUPS)", "XINFO", true);
pub(super) const LAG_LEN: Op = op("lag (XLEN)", "XLEN", true);
/// `SET NX` and `GET`, pipelined.
pub(super) const INCARNATION: Op = op("incarnation (SET NX, GET)", "PIPELINE", false);
pub(super) const CLAIM: Op = op("receive (XAUTOCLAIM)", "XAUTOCLAIM", true);
/// Only when entries were claimed, so not polling.
pub(super) const PENDING: Op = op("receive (XPENDING)", "XPENDING", false);
pub(super) const READ: Op = op("receive (XREADGROUP)", "XREADGROUP", true);
pub(super) const READ_BLOCK: Op = op("receive (XREADGROUP BLOCK)", "XREADGROUP", true);

/// `XADD key MAXLEN ~ cap * id .. key .. payload ..`
pub(super) fn add(key: &str, max_len: usize, message: &Message) -> Cmd {
    let mut c = cmd("XADD");
    c.arg(key)
        .arg("MAXLEN")
        .arg("~")
        .arg(max_len)
        .arg("*")
        .arg("id")
        .arg(&message.id)
        .arg("key")
        .arg(&message.key)
        .arg("payload")
        .arg(&message.payload);
    c
}

/// The dead-letter entry: the message, who gave up, why and when.
pub(super) fn add_dead_letter(key: &str, max_len: usize, delivery: &Delivery, error: &str) -> Cmd {
    let mut c = add(key, max_len, &delivery.message);
    c.arg("error")
        .arg(error)
        .arg("attempts")
        .arg(delivery.attempt)
        .arg("time_ms")
        .arg(crate::now_unix_ms())
        .arg("delivery_id")
        .arg(&delivery.delivery_id);
    c
}

/// `XGROUP CREATE key group 0 MKSTREAM`: a new group reads from the start.
pub(super) fn create_group(key: &str, group: &str) -> Cmd {
    let mut c = cmd("XGROUP");
    c.arg("CREATE").arg(key).arg(group).arg("0").arg("MKSTREAM");
    c
}

/// `XAUTOCLAIM key group consumer min-idle start COUNT n`
pub(super) fn autoclaim(
    key: &str,
    group: &str,
    consumer: &str,
    idle: Duration,
    start: &str,
    count: usize,
) -> Cmd {
    let mut c = cmd("XAUTOCLAIM");
    c.arg(key)
        .arg(group)
        .arg(consumer)
        .arg(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX))
        .arg(start)
        .arg("COUNT")
        .arg(count);
    c
}

/// One `XPENDING key group id id 1` per id, for their delivery counters.
pub(super) fn pending_each(key: &str, group: &str, ids: &[&str]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("XPENDING")
            .arg(key)
            .arg(group)
            .arg(*id)
            .arg(*id)
            .arg(1);
    }
    pipe
}

/// `XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS key >`
pub(super) fn read_group(
    key: &str,
    group: &str,
    consumer: &str,
    count: usize,
    block: Option<Duration>,
) -> Cmd {
    let mut c = cmd("XREADGROUP");
    c.arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if let Some(block) = block {
        // BLOCK 0 would mean forever.
        let ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
        c.arg("BLOCK").arg(ms);
    }
    c.arg("STREAMS").arg(key).arg(">");
    c
}

/// `XACK key group id..`
pub(super) fn ack(key: &str, group: &str, ids: &[String]) -> Cmd {
    let mut c = cmd("XACK");
    c.arg(key).arg(group).arg(ids);
    c
}

/// `XREVRANGE key + - COUNT n`
pub(super) fn newest(key: &str, count: usize) -> Cmd {
    let mut c = cmd("XREVRANGE");
    c.arg(key).arg("+").arg("-").arg("COUNT").arg(count);
    c
}

/// `XINFO GROUPS key`
pub(super) fn info_groups(key: &str) -> Cmd {
    let mut c = cmd("XINFO");
    c.arg("GROUPS").arg(key);
    c
}

/// `XLEN key`
pub(super) fn len(key: &str) -> Cmd {
    let mut c = cmd("XLEN");
    c.arg(key);
    c
}

/// A stream entry as a message. Missing fields (an entry someone else wrote)
/// come out empty: the consumer fails to decode it and dead-letters it,
/// rather than the whole group stalling on it.
pub(super) fn message(stream: &str, entry: &StreamId) -> Message {
    Message {
        id: entry.get("id").unwrap_or_default(),
        stream: stream.to_owned(),
        key: entry.get("key").unwrap_or_default(),
        payload: entry.get("payload").unwrap_or_default(),
    }
}

pub(super) fn delivery(stream: &str, entry: &StreamId, attempt: u32) -> Delivery {
    Delivery {
        stream: stream.to_owned(),
        delivery_id: entry.id.clone(),
        message: message(stream, entry),
        attempt,
    }
}

pub(super) fn dead_letter(stream: &str, group: &str, entry: &StreamId) -> DeadLetter {
    DeadLetter {
        group: group.to_owned(),
        message: message(stream, entry),
        error: entry.get("error").unwrap_or_default(),
        attempts: entry.get("attempts").unwrap_or_default(),
        time_unix_ms: entry.get("time_ms").unwrap_or_default(),
    }
}
