//! oslo's `TestMultipleServers` matrix: who receives what across exchanges, topics,
//! servers, fanout, calls and casts.

use super::*;

/// oslo's `TestMultipleServers`: 36 combinations of exchange, topic, server, fanout,
/// call/cast and shared/separate endpoints, each checking who received what. Where
/// exchanges are not isolated (RabbitMQ), the 6 cases of one topic in two exchanges
/// do not apply: oslo runs this matrix on its fake driver only.
pub async fn multiple_servers_matrix(factory: &TransportFactory) -> Result<()> {
    let isolated = factory.transport().await?.capabilities().isolated_exchanges;
    let mut ran = 0;
    for diff_exchange in [false, true] {
        for diff_topic in [false, true] {
            for diff_server in [false, true] {
                for fanout in [false, true] {
                    for call in [true, false] {
                        for multi in [false, true] {
                            if (fanout && call) || (!diff_topic && !diff_server) {
                                continue;
                            }
                            if !isolated && diff_exchange && !diff_topic {
                                continue;
                            }
                            let case = MatrixCase {
                                diff_exchange,
                                diff_topic,
                                diff_server,
                                fanout,
                                call,
                                multi,
                            };
                            case.run(factory).await?;
                            ran += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(ran, if isolated { 36 } else { 30 });
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct MatrixCase {
    diff_exchange: bool,
    diff_topic: bool,
    diff_server: bool,
    fanout: bool,
    call: bool,
    multi: bool,
}

impl MatrixCase {
    async fn run(self, factory: &TransportFactory) -> Result<()> {
        let base = unique("m");
        let (x1, x2) = if self.diff_exchange {
            (Some(format!("{base}x1")), Some(format!("{base}x2")))
        } else {
            (None, None)
        };
        let (t1, t2) = if self.diff_topic {
            (format!("{base}t1"), format!("{base}t2"))
        } else {
            (format!("{base}t"), format!("{base}t"))
        };
        let (s1, s2) = if self.diff_server {
            (Some("s1"), Some("s2"))
        } else {
            (None, None)
        };
        let pings1 = Arc::new(Mutex::new(Vec::<String>::new()));
        let pings2 = if self.multi {
            Arc::new(Mutex::new(Vec::new()))
        } else {
            pings1.clone()
        };
        let transport1 = factory.transport().await?;
        let transport2 = if self.diff_exchange {
            factory.transport().await?
        } else {
            transport1.clone()
        };
        let mut servers = Vec::new();
        let mut clients = Vec::new();
        for (transport, exchange, topic, server, pings) in [
            (&transport1, &x1, &t1, s1, &pings1),
            (&transport2, &x2, &t2, s2, &pings2),
        ] {
            let mut target = Target::topic(topic.clone()).server(server.unwrap_or("testserver"));
            target.exchange = exchange.clone();
            let pings = pings.clone();
            let endpoint = Endpoint::new()
                .method("ping", move |_c: Context, a: HashMap<String, String>| {
                    let pings = pings.clone();
                    async move {
                        pings
                            .lock()
                            .unwrap()
                            .push(a.get("arg").cloned().unwrap_or_default());
                        Ok::<_, RemoteError>(Value::Null)
                    }
                })
                .method("alive", |_c: Context, _: Value| async {
                    Ok::<_, RemoteError>("alive")
                });
            servers.push(
                RpcServer::new(transport, target)
                    .endpoint(endpoint)
                    .serializer(Arc::new(PrefixSerializer))
                    .max_concurrency(1)
                    .start()
                    .await?,
            );
            let mut client_target = Target::topic(topic.clone());
            client_target.exchange = exchange.clone();
            client_target.server = server.map(str::to_string);
            let client = RpcClient::new(transport, client_target)
                .serializer(Arc::new(PrefixSerializer))
                .timeout(Duration::from_secs(5));
            clients.push(client);
        }
        if self.fanout {
            for c in &mut clients {
                let _: String = c.call(&Context::new(), "alive", json!({})).await?;
                *c = c.prepare().fanout(true);
            }
        }
        for (client, arg) in clients.iter().zip(["1", "2"]) {
            if self.call {
                let _: Value = client
                    .call(&Context::new(), "ping", json!({"arg": arg}))
                    .await?;
            } else {
                client
                    .cast(&Context::new(), "ping", json!({"arg": arg}))
                    .await?;
            }
        }
        // oslo's expectations: per-endpoint lists, doubled for fanout to two servers in
        // one place, merged into "either" when two endpoints share one place.
        let same_place = !self.diff_exchange && !self.diff_topic;
        let (mut expect1, mut expect2) = if self.multi {
            (vec!["ds1"], vec!["ds2"])
        } else {
            (vec!["ds1", "ds2"], vec!["ds1", "ds2"])
        };
        if self.fanout && same_place && self.diff_server {
            expect1 = [expect1.clone(), expect1].concat();
            expect2 = [expect2.clone(), expect2].concat();
        }
        let either: Vec<&str> = if same_place && self.multi {
            [expect1.clone(), expect2.clone()].concat()
        } else {
            vec![]
        };
        let expected_total = match (self.multi, either.is_empty()) {
            (true, false) => either.len(),
            (true, true) => expect1.len() + expect2.len(),
            (false, _) => expect1.len(),
        };
        let received = || {
            if self.multi {
                pings1.lock().unwrap().len() + pings2.lock().unwrap().len()
            } else {
                pings1.lock().unwrap().len()
            }
        };
        eventually(|| received() >= expected_total).await;
        // Give wrongly routed copies a moment to show up.
        tokio::time::sleep(Duration::from_millis(30)).await;
        for s in &servers {
            s.stop().await;
        }
        for s in &servers {
            s.wait().await?;
        }
        let check = |got: Vec<String>, expect: &[&str]| {
            let mut got = got;
            got.sort();
            let mut want: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(got, want, "{self:?}");
        };
        if !either.is_empty() {
            check(
                [
                    pings1.lock().unwrap().clone(),
                    pings2.lock().unwrap().clone(),
                ]
                .concat(),
                &either,
            );
        } else {
            check(pings1.lock().unwrap().clone(), &expect1);
            check(pings2.lock().unwrap().clone(), &expect2);
        }
        Ok(())
    }
}
