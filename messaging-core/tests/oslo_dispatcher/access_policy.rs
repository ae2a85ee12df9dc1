//! Access policy matrix: policy x {foo (plain), bar (exposed), _foobar (private)}.

use super::*;

#[tokio::test]
async fn access_policy_matrix() {
    use AccessPolicy::{Default, Explicit, Legacy};
    let matrix: [(AccessPolicy, &str, bool); 9] = [
        (Default, "foo", true),
        (Default, "bar", true),
        (Default, "_foobar", false),
        (Explicit, "foo", false),
        (Explicit, "bar", true),
        (Explicit, "_foobar", false),
        (Legacy, "foo", true),
        (Legacy, "bar", true),
        (Legacy, "_foobar", true),
    ];
    for (policy, method, allowed) in matrix {
        let name: &'static str = match method {
            "foo" => "foo",
            "bar" => "bar",
            _ => "_foobar",
        };
        let expect = if allowed {
            Expect::Dispatched(0, name)
        } else {
            Expect::NoSuchMethod
        };
        check(
            &[DEFAULT_TARGET],
            Some(policy),
            json!({"method": method}),
            json!({}),
            expect,
        )
        .await;
    }
    assert_eq!(
        AccessPolicy::default(),
        AccessPolicy::Default,
        "policy None is the default policy"
    );
}
