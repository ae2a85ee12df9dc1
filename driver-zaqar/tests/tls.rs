//! `zaqar+https://` against a TLS front to the test server: `socat` terminates TLS with a
//! certificate for `localhost` that a CA made here by `openssl` signed, and forwards to
//! Zaqar. The CA file makes it work; another CA is refused as a TLS failure, not tried
//! again.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use messaging_core::notify::Notifier;
use messaging_core::testkit::unique;
use messaging_core::{Config, Context, ErrorKind, Priority, Retry};
use serde_json::json;

fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("openssl runs (scripts/services installs it)");
    assert!(
        out.status.success(),
        "openssl {args} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `<ca>.pem` and, when `server`, `server.pem`/`server.key` for `localhost` signed by it.
fn issue(dir: &Path, ca: &str, server: bool) {
    openssl(
        dir,
        &format!(
            "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN={ca} -keyout {ca}.key -out {ca}.pem"
        ),
    );
    if server {
        std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
        openssl(
            dir,
            "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr",
        );
        openssl(
            dir,
            &format!(
                "x509 -req -in server.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial -days 2 -extfile san.ext -out server.pem"
            ),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_ca_file_and_another_ca_refused() {
    support::require_server().await;
    let dir = std::env::temp_dir().join(unique("zaqar-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    issue(&dir, "ca", true);
    issue(&dir, "other-ca", false);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream = support::endpoint().replacen("http://", "TCP:", 1);
    let listen = format!(
        "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={d}/server.pem,key={d}/server.key,verify=0",
        d = dir.display()
    );
    let _front = tokio::process::Command::new("socat")
        .args([&listen, &upstream])
        .kill_on_drop(true)
        .spawn()
        .expect("socat runs (scripts/services installs it)");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let project = unique("tls");
    let url = |ca: &str| {
        format!(
            "zaqar+https://localhost:{port}/{project}?ssl_ca_file={}/{ca}.pem&retry_interval=0.01",
            dir.display()
        )
    };
    let notify = |url: String| async move {
        let transport = support::registry()
            .transport(&url, &Config::default())
            .await
            .unwrap();
        Notifier::new(&transport, "p")
            .topics(["secure"])
            .retry(Retry::Times(0))
            .try_notify(&Context::new(), "e", Priority::Info, json!(1))
            .await
    };
    notify(url("ca")).await.expect("posted over TLS");
    // The notification went through the front to Zaqar.
    let plain = support::client(&support::endpoint(), &project);
    let claim = plain.claim("secure__info", 20, 60, 60).await.unwrap();
    assert_eq!(claim.map(|c| c.messages.len()), Some(1));
    let err = notify(url("other-ca")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
