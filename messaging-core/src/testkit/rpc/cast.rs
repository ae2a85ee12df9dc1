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
pub async fn cast_server_in_group(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("castgroup"), None, 3).await?;
    let client = group.client();
    for _ in 0..20 {
        client.cast(&ctx(), "add", json!({"increment": 1})).await?;
    }
    group.settle(20).await;
    let calls = group.calls();
    assert_eq!(calls.iter().sum::<usize>(), 20, "{calls:?}");
    assert!(calls.iter().all(|c| *c > 0 && *c < 20), "{calls:?}");
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
