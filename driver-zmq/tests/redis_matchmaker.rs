//! The Redis matchmaker against a real Redis (`REDIS_URL`, default
//! `redis://127.0.0.1:6379`; `scripts/services` starts one there): registrations,
//! per-member expiry and renewal, a dead second server, and passwords kept out of errors.
//! When Redis does not answer, every test fails and names `scripts/services`.

use std::time::Duration;

use driver_zmq::destination::{Destination, Member};
use driver_zmq::matchmaker::{Matchmaker, Redis};
use messaging_core::{Error, TransportUrl};

/// `REDIS_URL` as given (`redis://[:password@]host:port[/db]`).
fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The test Redis as a matchmaker URL, between `before` and `after` (more hosts:
/// `h:p,` and `,h:p`).
fn matchmaker_url(before: &str, after: &str) -> TransportUrl {
    let url = redis_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let (netloc, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    format!("zmq+redis://{before}{netloc}{after}{path}")
        .parse()
        .expect("REDIS_URL is redis://[:password@]host[:port][/db]")
}

/// A matchmaker on the test Redis; panics, naming the script that starts Redis, unless
/// it answers.
async fn matchmaker() -> Redis {
    let mm = Redis::new(&matchmaker_url("", "")).expect("matchmaker URL");
    if let Err(e) = mm.lookup(&topic("probe")).await {
        panic!(
            "Redis is not reachable at {} ({e}): start it with scripts/services \
             (or set REDIS_URL)",
            matchmaker_url("", "").masked()
        );
    }
    mm
}

/// A destination no other test (or earlier run) uses.
fn topic(name: &str) -> Destination {
    Destination::Topic {
        exchange: "test".into(),
        topic: format!("{name}-{}", uuid::Uuid::new_v4()),
    }
}

async fn addresses(mm: &Redis, key: &Destination) -> Vec<String> {
    let found = mm.lookup(key).await.expect("lookup");
    found.into_iter().map(|m| m.address).collect()
}

#[tokio::test]
async fn register_lookup_unregister() {
    let mm = matchmaker().await;
    let key = topic("round-trip");
    assert!(mm.lookup(&key).await.unwrap().is_empty());
    let (a, b) = (
        Member::node("10.0.0.1:49153"),
        Member::node("10.0.0.2:49154"),
    );
    mm.register(&key, &b, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    mm.register(&key, &a, None).await.unwrap();
    // Registering again changes nothing but the expiry.
    mm.register(&key, &a, None).await.unwrap();
    assert_eq!(mm.lookup(&key).await.unwrap(), vec![a.clone(), b.clone()]);

    // Pools and other destinations are kept apart.
    let notifications = Destination::Notifications {
        exchange: "test".into(),
        topic: format!("n-{}.info", uuid::Uuid::new_v4()),
        pool: None,
    };
    let listener = Member {
        address: "10.0.0.3:5".into(),
        pool: Some("bill#ing".into()),
    };
    mm.register(&notifications, &listener, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        mm.lookup(&notifications).await.unwrap(),
        vec![listener.clone()]
    );
    assert_eq!(mm.lookup(&key).await.unwrap().len(), 2);

    mm.unregister(&key, &a).await.unwrap();
    assert_eq!(mm.lookup(&key).await.unwrap(), vec![b.clone()]);
    mm.unregister(&key, &b).await.unwrap();
    // Unregistering what is not there is fine.
    mm.unregister(&key, &b).await.unwrap();
    assert!(mm.lookup(&key).await.unwrap().is_empty());
    mm.unregister(&notifications, &listener).await.unwrap();
    assert!(mm.lookup(&notifications).await.unwrap().is_empty());
}

#[tokio::test]
async fn members_expire_one_by_one_and_renewal_extends() {
    let mm = matchmaker().await;
    let key = topic("expiry");
    let (short, long, renewed) = (
        Member::node("short:1"),
        Member::node("long:2"),
        Member::node("renewed:3"),
    );
    let second = Some(Duration::from_secs(1));
    mm.register(&key, &short, second).await.unwrap();
    mm.register(&key, &renewed, second).await.unwrap();
    mm.register(&key, &long, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(
        addresses(&mm, &key).await,
        ["long:2", "renewed:3", "short:1"]
    );

    // Sleeps only ever last longer, so the checks of what expired cannot be early; what
    // must still be there has half a second of margin.
    tokio::time::sleep(Duration::from_millis(600)).await;
    mm.register(&key, &renewed, second).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Over 1.1 s in: `short` expired; `renewed` would have without its renewal.
    assert_eq!(addresses(&mm, &key).await, ["long:2", "renewed:3"]);

    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Over 1.5 s after the renewal: only the long one is left.
    assert_eq!(addresses(&mm, &key).await, ["long:2"]);
    mm.unregister(&key, &long).await.unwrap();
}

/// A plain connection to the test Redis, to look at the keys themselves.
async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .expect("REDIS_URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a connection to REDIS_URL")
}

async fn pttl(raw: &mut redis::aio::MultiplexedConnection, key: &Destination) -> i64 {
    redis::cmd("PTTL")
        .arg(format!("omsg-zmq:{key}"))
        .query_async(raw)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_key_lives_as_long_as_its_newest_member() {
    let mm = matchmaker().await;
    let mut raw = raw().await;

    // A short registration after a long one does not shorten the key's life.
    let key = topic("key-expiry");
    let (long, short) = (Member::node("long:1"), Member::node("short:2"));
    mm.register(&key, &long, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    mm.register(&key, &short, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    let ttl = pttl(&mut raw, &key).await;
    assert!((20_000..=30_000).contains(&ttl), "PTTL {ttl}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(addresses(&mm, &key).await, ["long:1"]);
    mm.unregister(&key, &long).await.unwrap();
    assert_eq!(
        pttl(&mut raw, &key).await,
        -2,
        "the key is gone with its last member"
    );

    // A member without TTL keeps the key for good, whatever comes after it.
    let key = topic("key-persist");
    let permanent = Member::node("permanent:3");
    mm.register(&key, &short, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    mm.register(&key, &permanent, None).await.unwrap();
    mm.register(&key, &short, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    assert_eq!(pttl(&mut raw, &key).await, -1, "no expiry");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(addresses(&mm, &key).await, ["permanent:3"]);
    mm.unregister(&key, &permanent).await.unwrap();

    // Expired members take the key with them even when nobody looks it up.
    let key = topic("key-vanishes");
    mm.register(&key, &short, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(pttl(&mut raw, &key).await, -2, "expired with its member");
}

#[tokio::test]
async fn a_dead_second_server_does_not_stop_reads_or_writes() {
    matchmaker().await;
    // Port 1: nothing listens there.
    let mm = Redis::new(&matchmaker_url("", ",127.0.0.1:1")).unwrap();
    let key = topic("two-hosts");
    let member = Member::node("10.0.0.9:4000");
    mm.register(&key, &member, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(mm.lookup(&key).await.unwrap(), vec![member.clone()]);

    // Dead first: reads fall through to the live one.
    let mm2 = Redis::new(&matchmaker_url("127.0.0.1:1,", "")).unwrap();
    assert_eq!(mm2.lookup(&key).await.unwrap(), vec![member.clone()]);
    mm2.unregister(&key, &member).await.unwrap();
    assert!(mm.lookup(&key).await.unwrap().is_empty());
}

#[tokio::test]
async fn passwords_stay_out_of_errors() {
    let mm = matchmaker().await;
    let key = topic("password");
    let password = "Wr0ng-Pa55word";

    // A wrong password on the test Redis (wrong whether it has one or not), and the
    // same on a dead port.
    let mut url = matchmaker_url("", ",127.0.0.1:1");
    for host in &mut url.hosts {
        host.password = Some(password.into());
    }
    let bad = Redis::new(&url).unwrap();
    let debug = format!("{bad:?}");
    assert!(!debug.contains(password), "{debug}");
    let errors = [
        bad.lookup(&key).await.unwrap_err(),
        bad.register(&key, &Member::node("h:1"), None)
            .await
            .unwrap_err(),
        bad.unregister(&key, &Member::node("h:1"))
            .await
            .unwrap_err(),
    ];
    for e in errors {
        assert!(matches!(e, Error::Transport(_)), "{e:?}");
        let text = format!("{e} | {e:?}");
        assert!(!text.contains(password), "{text}");
        assert!(
            text.contains("Redis matchmaker at 127.0.0.1:1 unreachable"),
            "{text}"
        );
        let live = &url.hosts[0];
        let live = format!(
            "Redis matchmaker at {}:{}",
            live.hostname.as_deref().unwrap_or("127.0.0.1"),
            live.port.unwrap_or(6379)
        );
        assert!(text.contains(&live), "{text}");
    }

    // The right matchmaker still works, and nothing was written by the wrong one.
    assert!(mm.lookup(&key).await.unwrap().is_empty());
}
