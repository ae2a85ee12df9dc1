//! [`InProcess`]: the table of one process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use messaging_core::Result;

use super::Matchmaker;
use crate::destination::{Destination, Member};

type Table = HashMap<Destination, HashMap<Member, Option<Instant>>>;

/// Registrations kept in this process: every transport of the process that uses it
/// sees the others' servers and listeners (oslo's `dummy` matchmaker).
#[derive(Debug, Clone, Default)]
pub struct InProcess {
    table: Arc<Mutex<Table>>,
}

impl InProcess {
    /// The table shared by the whole process.
    pub fn shared() -> InProcess {
        static SHARED: std::sync::LazyLock<InProcess> =
            std::sync::LazyLock::new(InProcess::default);
        SHARED.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Matchmaker for InProcess {
    async fn register(
        &self,
        key: &Destination,
        member: &Member,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let expiry = ttl.and_then(|t| Instant::now().checked_add(t));
        self.lock()
            .entry(key.clone())
            .or_default()
            .insert(member.clone(), expiry);
        Ok(())
    }

    async fn unregister(&self, key: &Destination, member: &Member) -> Result<()> {
        let mut table = self.lock();
        if let Some(members) = table.get_mut(key) {
            members.remove(member);
            if members.is_empty() {
                table.remove(key);
            }
        }
        Ok(())
    }

    async fn lookup(&self, key: &Destination) -> Result<Vec<Member>> {
        let now = Instant::now();
        let mut table = self.lock();
        let Some(members) = table.get_mut(key) else {
            return Ok(Vec::new());
        };
        members.retain(|_, expiry| expiry.is_none_or(|e| e > now));
        let mut found: Vec<Member> = members.keys().cloned().collect();
        found.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registrations_expire_and_can_be_removed() {
        let mm = InProcess::default();
        let key = Destination::Topic {
            exchange: "x".into(),
            topic: "t".into(),
        };
        let (a, b) = (Member::node("h:1"), Member::node("h:2"));
        mm.register(&key, &a, None).await.unwrap();
        mm.register(&key, &b, Some(Duration::from_millis(50)))
            .await
            .unwrap();
        assert_eq!(mm.lookup(&key).await.unwrap(), vec![a.clone(), b.clone()]);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(mm.lookup(&key).await.unwrap(), vec![a.clone()]);
        mm.unregister(&key, &a).await.unwrap();
        assert!(mm.lookup(&key).await.unwrap().is_empty());
    }
}
