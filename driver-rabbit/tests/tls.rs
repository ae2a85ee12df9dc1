//! TLS against a TLS front to the test broker: `socat` terminates TLS with
//! certificates made here by `openssl` (a CA, a server certificate for `localhost`, a
//! client certificate) and forwards to RabbitMQ. Checks the CA file, the client
//! certificate and key, and that a wrong CA or a wrong host name is refused.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use messaging_core::{Config, Context, Error, Retry, RpcClient, Target};
use serde_json::{Value, json};
use tokio::process::Child;

fn run(dir: &Path, args: &[&str]) {
    support::command("openssl", args, Some(dir));
}

/// A CA, and a certificate it signed for `name` (`<name>.pem`, `<name>.key`).
fn certificates(dir: &Path, ca: &str, names: &[&str]) {
    run(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
        ],
    );
    for name in names {
        run(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        run(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }
}

/// `socat` terminating TLS on a free port and forwarding to the broker; it asks for a
/// client certificate signed by the CA.
async fn tls_front(dir: &Path) -> (Child, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!(
        "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={d}/server.pem,key={d}/server.key,cafile={d}/ca.pem,verify=1",
        d = dir.display()
    );
    let child = tokio::process::Command::new("socat")
        .args([&listen, "TCP:127.0.0.1:5672"])
        .kill_on_drop(true)
        .spawn()
        .expect("socat runs (scripts/services installs it)");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (child, port);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("socat did not listen on {port}");
}

fn config(dir: &Path, ca: &str, client_certificate: bool) -> Config {
    let d = dir.display();
    let mut ini = format!(
        "[oslo_messaging_rabbit]\nssl = true\nssl_ca_file = {d}/{ca}.pem\nrabbit_retry_interval = 1\n"
    );
    if client_certificate {
        ini += &format!("ssl_cert_file = {d}/client.pem\nssl_key_file = {d}/client.key\n");
    }
    Config::from_ini_str(&ini).unwrap()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(support::unique("tls"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn tls_with_a_ca_file_and_a_client_certificate() {
    support::require_broker().await;
    let dir = scratch();
    certificates(&dir, "ca", &["server", "client"]);
    certificates(&dir, "other-ca", &[]);
    let (_front, port) = tls_front(&dir).await;

    // The right CA, the host name in the certificate, a client certificate: works.
    let transport = support::registry()
        .transport(
            &format!("rabbit://guest:guest@localhost:{port}/"),
            &config(&dir, "ca", true),
        )
        .await
        .unwrap();
    let topic = support::unique("tls");
    let server = support::echo_server(&transport, &topic).await;
    let client = RpcClient::new(&transport, Target::topic(topic.clone()));
    let echoed: Value = client
        .call(&Context::new(), "echo", json!({"data": "over TLS"}))
        .await
        .unwrap();
    assert_eq!(echoed, json!("over TLS"));
    server.stop().await;
    server.wait().await.unwrap();
    transport.cleanup().await;

    // A CA that did not sign the server's certificate, a host name the certificate
    // does not name, no client certificate: refused.
    for (host, ca, client_certificate) in [
        ("localhost", "other-ca", true),
        ("127.0.0.1", "ca", true),
        ("localhost", "ca", false),
    ] {
        let transport = support::registry()
            .transport(
                &format!("rabbit://guest:guest@{host}:{port}/"),
                &config(&dir, ca, client_certificate),
            )
            .await
            .unwrap();
        let err = RpcClient::new(&transport, Target::topic(topic.clone()))
            .retry(Retry::Times(0))
            .cast(&Context::new(), "echo", json!({}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::DeliveryFailure(_)),
            "{host} {ca}: {err:?}"
        );
        if client_certificate {
            // Our side refused the broker's certificate.
            let text = err.to_string().to_lowercase();
            assert!(text.contains("certificate"), "{host} {ca}: {err}");
        }
        transport.cleanup().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
