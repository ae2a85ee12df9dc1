//! Casts: to one server, to a group, and fanout to every server.

use super::*;

/// Casts to one server reach only it; casts are unordered.
pub async fn cast_specific_server(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("castone"), None, 3).await?;
    let client = group.client().server(group.names[0].clone());
    client
        .cast(&ctx(), "append", json!({"text": "open"}))
        .await?;
    client
        .cast(&ctx(), "append", json!({"text": "stack"}))
        .await?;
    client.cast(&ctx(), "add", json!({"increment": 12})).await?;
    group.settle(3).await;
    let s = group.states[0].lock().unwrap().sval.clone();
    assert!(s == "openstack" || s == "stackopen", "{s}");
    assert_eq!(group.states[0].lock().unwrap().ival, 12);
    assert_eq!(group.calls(), vec![3, 0, 0]);
    group.stop().await
}

/// Casts on the bare topic are split over the servers.
///
/// As with calls ([`call_server_in_group`](super::call_server_in_group)), oslo's burst of
/// 20 is followed by casts one at a time until every server has taken some: on a
/// transport whose servers poll, whoever asks first may take a whole burst.
pub async fn cast_server_in_group(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("castgroup"), None, 3).await?;
    let client = group.client();
    let deadline = tokio::time::Instant::now() + ARRIVAL_LIMIT;
    let mut sent = 0;
    loop {
        let burst = if sent == 0 { 20 } else { 1 };
        for _ in 0..burst {
            client.cast(&ctx(), "add", json!({"increment": 1})).await?;
        }
        sent += burst;
        group.settle(sent).await;
        if group.every_server_served() || tokio::time::Instant::now() >= deadline {
            break;
        }
    }
    let calls = group.calls();
    assert_eq!(calls.iter().sum::<usize>(), sent, "{calls:?}");
    assert!(
        group.every_server_served(),
        "every server gets some of {sent} casts: {calls:?}"
    );
    group.stop().await
}

/// A fanout cast reaches every server.
pub async fn cast_fanout(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("fanout"), None, 3).await?;
    group
        .client()
        .fanout(true)
        .cast(&ctx(), "add", json!({"increment": 12}))
        .await?;
    group.settle(3).await;
    for name in &group.names {
        let state: Value = group
            .client()
            .server(name.clone())
            .call(&ctx(), "state", json!({}))
            .await?;
        assert_eq!(state["ival"], 12, "{name}");
    }
    group.stop().await
}
