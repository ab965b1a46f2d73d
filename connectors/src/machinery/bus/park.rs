//! The parking lot: conversations whose delivery keeps failing wait here,
//! in Redis, instead of in the broker's prefetch window.
//!
//! A message that failed a few times in place is *parked*: appended to its
//! conversation's list, the conversation scheduled in the route's due set,
//! and only then acknowledged on its shard. Later messages of a parked
//! conversation are appended behind it as they arrive, so nothing
//! overtakes. The [`super::release`] loop retries each parked
//! conversation's head when it is due and, once it went through, the ones
//! behind it at once.
//!
//! Keys, per installation (`<ns>` = the bus namespace, `UM_BUS_NAMESPACE`)
//! and route slug:
//!
//! | key | type | what |
//! |---|---|---|
//! | `<ns>:park:<route>:due` | sorted set | parked conversations (ordering keys) nobody works on, scored by when their head is due (ms since the epoch) |
//! | `<ns>:park:<route>:leased` | sorted set | parked conversations a releaser works on, scored by the end of its lease (an expired lease is claimed again) |
//! | `<ns>:park:<route>:t:<tenant>` | set | a Tenant's parked conversations, to try them at once when the Tenant's deliveries work again |
//! | `<ns>:park:<route>:q:<conversation>` | list | the conversation's waiting envelopes, oldest first |
//! | `<ns>:park:<route>:m:<conversation>` | hash | the head's `attempts`, `since` (first failure, ms) and last `error` |
//!
//! Every write renews a TTL longer than the retry budget, so a key nothing
//! touches any more (a deleted installation) goes away by itself.
//!
//! Why Redis and not the broker: a parked conversation's backlog must be
//! reachable by conversation (its next message is released when its head
//! went through), which no queue offers short of one queue per
//! conversation; RabbitMQ has no per-message delay either (TTL queues
//! would make every waiting message cycle through the broker). Redis holds
//! the waiting messages, so it must persist them: the chart runs it with
//! `appendonly yes` and `appendfsync always`, and `maxmemory` with
//! `noeviction`, so a full Redis refuses to park (the message then waits in
//! place, holding its prefetch) instead of evicting a parked message.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;

use crate::machinery::store::{Store, StoreError};

/// What a shard consumer learns about a message before handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// This service finished it before (a redelivery): acknowledge unsent.
    Done,
    /// Its conversation is parked: append it behind the waiting ones.
    Parked,
    /// Handle it.
    Go,
}

/// The head of a parked conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// The envelope as it came from the broker.
    pub(crate) data: Vec<u8>,
    /// Attempts so far (0 for a message that waited behind another).
    pub(crate) attempts: u32,
    /// First failure, ms since the epoch; `None` if it never failed.
    pub(crate) since: Option<u64>,
    pub(crate) error: Option<String>,
}

/// How a message enters the lot: as a head that failed (with its history)
/// or as a follower that waits behind one.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) attempts: u32,
    pub(crate) since: u64,
    pub(crate) error: String,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// `done` (2) if the done marker exists, `parked` (1) if the conversation
/// has waiting messages, else 0: one round trip per message. A replayed
/// dead letter (ARGV[1] = 1) clears the `dead` marker its dead-lettering
/// left, so it is delivered this time.
const ADMIT: &str = r#"
local marker = redis.call('GET', KEYS[1])
if marker == 'dead' and ARGV[1] == '1' then
  redis.call('DEL', KEYS[1])
  marker = false
end
if marker then return 2 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
return 0
"#;

/// Appends an envelope; a conversation that was not parked becomes parked
/// with this one as head (with its failure, if it has one) due at ARGV[3].
const PARK: &str = r#"
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
if n == 1 then
  redis.call('DEL', KEYS[2])
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[2], 'attempts', ARGV[5], 'since', ARGV[6], 'error', ARGV[7])
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
  end
end
if not redis.call('ZSCORE', KEYS[4], ARGV[2]) then
  redis.call('ZADD', KEYS[3], 'NX', ARGV[3], ARGV[2])
end
redis.call('SADD', KEYS[5], ARGV[2])
for i = 1, 5 do
  if i ~= 2 then redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
end
return n
"#;

/// Claims up to ARGV[3] conversations until ARGV[2]: expired leases first,
/// then due ones. Returns the number of parked conversations first, then
/// the claimed ones.
const CLAIM: &str = r#"
local claimed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(claimed) do
  redis.call('ZADD', KEYS[2], ARGV[2], member)
end
local room = tonumber(ARGV[3]) - #claimed
if room > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, room)
  for _, member in ipairs(due) do
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZADD', KEYS[2], ARGV[2], member)
    table.insert(claimed, member)
  end
end
table.insert(claimed, 1, tostring(redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2])))
return claimed
"#;

/// Removes the head if it still is ARGV[2]; unparks an emptied
/// conversation. Returns how many wait behind, or -1 if the head changed.
const POP: &str = r#"
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return -1 end
redis.call('LPOP', KEYS[1])
redis.call('DEL', KEYS[2])
local left = redis.call('LLEN', KEYS[1])
if left == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('SREM', KEYS[5], ARGV[1])
end
return left
"#;

/// Records a failed attempt of the head, ends the lease, and schedules
/// the conversation for ARGV[2].
const RESCHEDULE: &str = r#"
redis.call('HSET', KEYS[2], 'attempts', ARGV[3], 'since', ARGV[4], 'error', ARGV[5])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
return 1
"#;

/// A Tenant's deliveries work again: its parked conversations waiting for
/// a later retry are due now.
const HURRY: &str = r#"
local hurried = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local score = redis.call('ZSCORE', KEYS[1], member)
  if score and tonumber(score) > tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], member)
    hurried = hurried + 1
  end
end
return hurried
"#;

/// One route's parking lot.
#[derive(Clone)]
pub(crate) struct ParkingLot {
    conn: ConnectionManager,
    /// `<ns>:park:<route>`.
    prefix: String,
    store: Store,
    /// TTL of every key, renewed on each write.
    ttl: Duration,
}

fn command<'a>(
    step: &'static str,
    key: &'a str,
) -> impl FnOnce(redis::RedisError) -> StoreError + 'a {
    move |source| StoreError::Command {
        step,
        key: key.to_owned(),
        source,
    }
}

impl ParkingLot {
    /// The lot of `route_slug` in the bus namespace `namespace` (the
    /// store's own namespace in a deployment).
    pub(crate) fn new(
        store: &Store,
        namespace: &str,
        route_slug: &str,
        retry_for: Duration,
    ) -> Self {
        Self {
            conn: store.connection(),
            prefix: format!("{namespace}:park:{route_slug}"),
            store: store.clone(),
            // A day longer than the budget: a conversation being retried
            // renews its keys at every attempt.
            ttl: retry_for + Duration::from_secs(24 * 3600),
        }
    }

    fn due_key(&self) -> String {
        format!("{}:due", self.prefix)
    }

    fn leased_key(&self) -> String {
        format!("{}:leased", self.prefix)
    }

    fn tenant_key(&self, tenant: &str) -> String {
        format!("{}:t:{tenant}", self.prefix)
    }

    fn queue_key(&self, conversation: &str) -> String {
        format!("{}:q:{conversation}", self.prefix)
    }

    fn meta_key(&self, conversation: &str) -> String {
        format!("{}:m:{conversation}", self.prefix)
    }

    fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis() as u64
    }

    pub(crate) async fn admit(
        &self,
        tenant: &str,
        envelope_id: &str,
        conversation: &str,
        replayed: bool,
    ) -> Result<Admission, StoreError> {
        let done = self.store.key(tenant, "done", envelope_id);
        let queue = self.queue_key(conversation);
        let answer: i64 = redis::Script::new(ADMIT)
            .key(&done)
            .key(&queue)
            .arg(if replayed { "1" } else { "0" })
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(command("admit", &queue))?;
        Ok(match answer {
            2 => Admission::Done,
            1 => Admission::Parked,
            _ => Admission::Go,
        })
    }

    /// Parks `data` at the end of its conversation; `failure` describes it
    /// if it becomes the head, `due_ms` is when a new head is tried.
    pub(crate) async fn park(
        &self,
        tenant: &str,
        conversation: &str,
        data: &[u8],
        failure: Option<&Failure>,
        due_ms: u64,
    ) -> Result<(), StoreError> {
        let queue = self.queue_key(conversation);
        let (attempts, since, error) = match failure {
            Some(f) => (
                f.attempts.to_string(),
                f.since.to_string(),
                f.error.as_str(),
            ),
            None => (String::new(), String::new(), ""),
        };
        redis::Script::new(PARK)
            .key(&queue)
            .key(self.meta_key(conversation))
            .key(self.due_key())
            .key(self.leased_key())
            .key(self.tenant_key(tenant))
            .arg(data)
            .arg(conversation)
            .arg(due_ms)
            .arg(self.ttl_ms())
            .arg(attempts)
            .arg(since)
            .arg(error)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map(|_| ())
            .map_err(command("park", &queue))
    }

    /// Claims up to `limit` due conversations for `lease`; also answers
    /// how many conversations are parked in all.
    pub(crate) async fn claim(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<(usize, Vec<String>), StoreError> {
        let now = now_ms();
        let due = self.due_key();
        let mut answer: Vec<String> = redis::Script::new(CLAIM)
            .key(&due)
            .key(self.leased_key())
            .arg(now)
            .arg(now + lease.as_millis() as u64)
            .arg(limit)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(command("claim", &due))?;
        let parked = if answer.is_empty() {
            0
        } else {
            answer.remove(0).parse().unwrap_or_default()
        };
        Ok((parked, answer))
    }

    /// The conversation's head, if it has one.
    pub(crate) async fn head(&self, conversation: &str) -> Result<Option<Head>, StoreError> {
        let queue = self.queue_key(conversation);
        let (data, meta): (Option<Vec<u8>>, Vec<Option<String>>) = redis::pipe()
            .cmd("LINDEX")
            .arg(&queue)
            .arg(0)
            .cmd("HMGET")
            .arg(self.meta_key(conversation))
            .arg("attempts")
            .arg("since")
            .arg("error")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(command("read parked head", &queue))?;
        let Some(data) = data else {
            // Emptied (or expired) behind our back: unpark it.
            let _: Result<(i64, i64), _> = redis::pipe()
                .cmd("ZREM")
                .arg(self.due_key())
                .arg(conversation)
                .cmd("ZREM")
                .arg(self.leased_key())
                .arg(conversation)
                .query_async(&mut self.conn.clone())
                .await;
            return Ok(None);
        };
        let field = |i: usize| meta.get(i).cloned().flatten();
        Ok(Some(Head {
            data,
            attempts: field(0).and_then(|a| a.parse().ok()).unwrap_or(0),
            since: field(1).and_then(|s| s.parse().ok()),
            error: field(2),
        }))
    }

    /// The head `data` is finished; `Some(n)` messages wait behind it, or
    /// `None` if the head was not `data` any more (another releaser).
    pub(crate) async fn pop(
        &self,
        tenant: &str,
        conversation: &str,
        data: &[u8],
    ) -> Result<Option<usize>, StoreError> {
        let queue = self.queue_key(conversation);
        let left: i64 = redis::Script::new(POP)
            .key(&queue)
            .key(self.meta_key(conversation))
            .key(self.due_key())
            .key(self.leased_key())
            .key(self.tenant_key(tenant))
            .arg(conversation)
            .arg(data)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(command("pop parked head", &queue))?;
        Ok(usize::try_from(left).ok())
    }

    /// Keeps a claimed conversation for another `lease`.
    pub(crate) async fn hold(&self, conversation: &str, lease: Duration) -> Result<(), StoreError> {
        let due = self.leased_key();
        redis::cmd("ZADD")
            .arg(&due)
            .arg("XX")
            .arg(now_ms() + lease.as_millis() as u64)
            .arg(conversation)
            .query_async::<i64>(&mut self.conn.clone())
            .await
            .map(|_| ())
            .map_err(command("hold parked conversation", &due))
    }

    /// `tenant`'s parked conversations that wait for a later retry are
    /// due now; returns how many.
    pub(crate) async fn hurry(&self, tenant: &str) -> Result<usize, StoreError> {
        let set = self.tenant_key(tenant);
        redis::Script::new(HURRY)
            .key(self.due_key())
            .key(&set)
            .arg(now_ms())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(command("hurry parked conversations", &set))
    }

    /// The head failed again: remember it and try at `due_ms`.
    pub(crate) async fn reschedule(
        &self,
        conversation: &str,
        failure: &Failure,
        due_ms: u64,
    ) -> Result<(), StoreError> {
        let queue = self.queue_key(conversation);
        redis::Script::new(RESCHEDULE)
            .key(&queue)
            .key(self.meta_key(conversation))
            .key(self.due_key())
            .key(self.leased_key())
            .arg(conversation)
            .arg(due_ms)
            .arg(failure.attempts)
            .arg(failure.since)
            .arg(&failure.error)
            .arg(self.ttl_ms())
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map(|_| ())
            .map_err(command("reschedule parked head", &queue))
    }
}
