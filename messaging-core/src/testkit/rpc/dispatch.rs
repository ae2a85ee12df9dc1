//! What reaches an endpoint: version and namespace dispatch, the access policy, the
//! ping endpoint, the client's version cap, the caller's context and the serializer.

use super::*;

/// Namespace and version dispatch: same version works, a higher minor or another
/// namespace fails with UnsupportedVersion.
pub async fn endpoint_version_namespace(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("versions");
    let endpoint = Endpoint::new()
        .namespace("Name1")
        .version("7.5")
        .method("echo", |_c: Context, v: Value| async move {
            Ok::<_, RemoteError>(v)
        });
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s1"))
        .endpoint(endpoint)
        .start()
        .await?;
    let client = RpcClient::new(&transport, Target::topic(topic)).timeout(Duration::from_secs(5));
    let ok: Value = client
        .prepare()
        .namespace("Name1")
        .version("7.5")
        .call(&ctx(), "echo", json!({"a": 1}))
        .await?;
    assert_eq!(ok, json!({"a": 1}));
    for c in [
        client.prepare().namespace("Name1").version("7.6"),
        client.prepare().namespace("Name2").version("7.5"),
    ] {
        match c.call::<_, Value>(&ctx(), "echo", json!({})).await {
            Err(Error::Remote(r)) => assert!(
                r.is("oslo_messaging.rpc.dispatcher", "UnsupportedVersion"),
                "{r:?}"
            ),
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
    }
    server.stop().await;
    server.wait().await
}

/// The default policy refuses `_private` methods; the legacy one allows them; the
/// explicit one allows only exposed methods.
pub async fn private_methods_refused(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let endpoint = || {
        Endpoint::new()
            .method("_secret", |_c: Context, _: Value| async {
                Ok::<_, RemoteError>("secret")
            })
            .method("public", |_c: Context, _: Value| async {
                Ok::<_, RemoteError>("public")
            })
            .exposed_method("exposed", |_c: Context, _: Value| async {
                Ok::<_, RemoteError>("exposed")
            })
    };
    let cases = [
        (AccessPolicy::Default, [false, true, true]),
        (AccessPolicy::Legacy, [true, true, true]),
        (AccessPolicy::Explicit, [false, false, true]),
    ];
    for (policy, allowed) in cases {
        let topic = unique("policy");
        let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s"))
            .endpoint(endpoint())
            .access_policy(policy)
            .start()
            .await?;
        let client =
            RpcClient::new(&transport, Target::topic(topic)).timeout(Duration::from_secs(5));
        for (method, ok) in ["_secret", "public", "exposed"].into_iter().zip(allowed) {
            match client.call::<_, String>(&ctx(), method, json!({})).await {
                Ok(v) => assert!(
                    ok && v == method.trim_start_matches('_'),
                    "{policy:?} {method}"
                ),
                Err(Error::Remote(r)) => {
                    assert!(!ok, "{policy:?} refused {method}");
                    assert!(
                        r.is("oslo_messaging.rpc.dispatcher", "NoSuchMethod"),
                        "{r:?}"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        server.stop().await;
        server.wait().await?;
    }
    Ok(())
}

/// With ping enabled, `oslo_rpc_server_ping` answers "pong"; without, NoSuchMethod.
pub async fn ping_endpoint(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    for enabled in [true, false] {
        let topic = unique("ping");
        let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s"))
            .endpoint(Endpoint::new().method("x", |_c: Context, _: Value| async {
                Ok::<_, RemoteError>(())
            }))
            .ping(enabled)
            .start()
            .await?;
        let client =
            RpcClient::new(&transport, Target::topic(topic)).timeout(Duration::from_secs(5));
        let reply = client
            .call::<_, String>(&ctx(), "oslo_rpc_server_ping", json!({}))
            .await;
        match (enabled, reply) {
            (true, Ok(pong)) => assert_eq!(pong, "pong"),
            (false, Err(Error::Remote(r))) => {
                assert!(r.is("oslo_messaging.rpc.dispatcher", "NoSuchMethod"))
            }
            (_, other) => panic!("ping enabled={enabled}: {other:?}"),
        }
        server.stop().await;
        server.wait().await?;
    }
    Ok(())
}

/// A client's version cap refuses higher versions (and a missing version) before sending.
pub async fn version_cap(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let client = RpcClient::new(&transport, Target::topic(unique("cap"))).version_cap("1.5");
    assert!(client.can_send_version(Some("1.5"))?);
    assert!(!client.can_send_version(Some("1.6"))?);
    assert!(!client.can_send_version(Some("2.0"))?);
    let err = client
        .prepare()
        .version("1.6")
        .cast(&ctx(), "x", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::VersionCap { .. }), "{err:?}");
    let err = client.cast(&ctx(), "x", json!({})).await.unwrap_err();
    assert!(
        matches!(err, Error::VersionCap { .. }),
        "a cap with no version is refused: {err:?}"
    );
    let err = client
        .prepare()
        .version("x.y")
        .cast(&ctx(), "x", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidVersion { .. }), "{err:?}");
    let err = RpcClient::new(&transport, Target::default())
        .cast(&ctx(), "x", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTarget { .. }), "{err:?}");
    let err = RpcClient::new(&transport, Target::topic("t").fanout(true))
        .call::<_, Value>(&ctx(), "x", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidTarget { .. }),
        "a fanout call is refused: {err:?}"
    );
    Ok(())
}

/// The caller's context reaches the endpoint, with `client_timeout` added.
pub async fn context_reaches_endpoint(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("context");
    let endpoint = Endpoint::new().method("whoami", |c: Context, _: Value| async move {
        Ok::<_, RemoteError>(c)
    });
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s"))
        .endpoint(endpoint)
        .start()
        .await?;
    let client = RpcClient::new(&transport, Target::topic(topic)).timeout(Duration::from_secs(5));
    let seen: Context = client
        .call(
            &Context::new().with("user", "alice").with("project", "p1"),
            "whoami",
            json!({}),
        )
        .await?;
    assert_eq!(seen.get("user"), Some(&json!("alice")));
    assert_eq!(seen.get("project"), Some(&json!("p1")));
    assert_eq!(seen.get("client_timeout"), Some(&Value::Null));
    let seen: Context = client
        .prepare()
        .call_monitor_timeout(Duration::from_secs(4))
        .call(&Context::new(), "whoami", json!({}))
        .await?;
    assert_eq!(seen.get("client_timeout"), Some(&json!(4)));
    server.stop().await;
    server.wait().await
}

/// Arguments, results and context pass through the serializer on both sides
/// (oslo's `test_call`, `test_context`: 'foo' comes back as 'dsdsfoo').
pub async fn serializer_round_trip(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("serializer");
    let endpoint = Endpoint::new()
        .method(
            "echo",
            |_c: Context, a: HashMap<String, Value>| async move {
                Ok::<_, RemoteError>(a.get("arg").cloned().unwrap_or(Value::Null))
            },
        )
        .method(
            "ctxt_check",
            |c: Context, a: HashMap<String, String>| async move {
                let key = a.get("key").cloned().unwrap_or_default();
                Ok::<_, RemoteError>(c.get(&key).cloned().unwrap_or(Value::Null))
            },
        );
    let server = RpcServer::new(
        &transport,
        Target::topic(topic.clone()).server("testserver"),
    )
    .endpoint(endpoint)
    .serializer(Arc::new(PrefixSerializer))
    .start()
    .await?;
    let client = RpcClient::new(&factory.transport().await?, Target::topic(topic))
        .serializer(Arc::new(PrefixSerializer))
        .timeout(Duration::from_secs(5));
    for (arg, expected) in [
        (json!(null), json!(null)),
        (json!(0), json!(0)),
        (json!(false), json!(false)),
        (json!([]), json!([])),
        (json!({}), json!({})),
        (json!("foo"), json!("dsdsfoo")),
    ] {
        let got: Value = client
            .call(&Context::new(), "echo", json!({ "arg": arg }))
            .await?;
        assert_eq!(got, expected);
        let direct: Value = client
            .prepare()
            .server("testserver")
            .call(&Context::new(), "echo", json!({ "arg": arg }))
            .await?;
        assert_eq!(direct, expected);
    }
    let got: Value = client
        .call(
            &Context::new().with("dsa", "b"),
            "ctxt_check",
            json!({"key": "a"}),
        )
        .await?;
    assert_eq!(got, json!("dsdsb"));
    server.stop().await;
    server.wait().await
}
