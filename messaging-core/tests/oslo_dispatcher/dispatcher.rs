//! TestDispatcher

use super::*;

#[tokio::test]
async fn no_endpoints() {
    check(
        &[],
        None,
        json!({"method": "foo"}),
        json!({}),
        Expect::Unsupported("1.0"),
    )
    .await;
}

#[tokio::test]
async fn default_target() {
    check(
        &[DEFAULT_TARGET],
        None,
        json!({"method": "foo"}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}

#[tokio::test]
async fn default_target_ctxt_and_args() {
    check(
        &[DEFAULT_TARGET],
        Some(AccessPolicy::Legacy),
        json!({"method": "bar", "args": {"blaa": true}}),
        json!({"user": "bob"}),
        Expect::Dispatched(0, "bar"),
    )
    .await;
}

#[tokio::test]
async fn default_target_namespace() {
    check(
        &[DEFAULT_TARGET],
        Some(AccessPolicy::Legacy),
        json!({"method": "foo", "namespace": null}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}

#[tokio::test]
async fn default_target_version() {
    check(
        &[DEFAULT_TARGET],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "version": "1.0"}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}

#[tokio::test]
async fn default_target_no_such_method() {
    check(
        &[DEFAULT_TARGET],
        Some(AccessPolicy::Default),
        json!({"method": "foobar"}),
        json!({}),
        Expect::NoSuchMethod,
    )
    .await;
}

#[tokio::test]
async fn namespace() {
    check(
        &[DEFAULT_TARGET, ns("testns")],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "namespace": "testns"}),
        json!({}),
        Expect::Dispatched(1, "foo"),
    )
    .await;
}

#[tokio::test]
async fn namespace_mismatch() {
    check(
        &[DEFAULT_TARGET, ns("testns")],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "namespace": "nstest"}),
        json!({}),
        Expect::Unsupported("1.0"),
    )
    .await;
}

#[tokio::test]
async fn version() {
    check(
        &[ver("1.5"), ver("3.4")],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "version": "3.2"}),
        json!({}),
        Expect::Dispatched(1, "foo"),
    )
    .await;
}

#[tokio::test]
async fn version_mismatch() {
    check(
        &[ver("1.5"), ver("3.0")],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "version": "3.2"}),
        json!({}),
        Expect::Unsupported("3.2"),
    )
    .await;
}

// `message_in_null_namespace_with_multiple_namespaces` (legacy_namespaces=[None]) is
// not ported: `Endpoint::legacy_namespaces` takes names only, so the null namespace
// cannot be listed as a legacy namespace.

// oslo's rows 12 to 16 use legacy_namespaces ['second', None]; the None cannot be
// written here (see above) and plays no part in these rows' outcomes.
const MULTI_NS: Ep = Ep {
    namespace: Some("testns"),
    version: None,
    legacy_namespaces: &["second"],
};

#[tokio::test]
async fn message_in_wrong_namespace_with_multiple_namespaces() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "namespace": "wrong"}),
        json!({}),
        Expect::Unsupported("1.0"),
    )
    .await;
}

#[tokio::test]
async fn message_in_legacy_namespace_with_multiple_namespaces() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "namespace": "second"}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}

#[tokio::test]
async fn message_with_endpoint_no_private_and_public_method() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "namespace": "testns"}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}

#[tokio::test]
async fn message_with_endpoint_no_private_and_private_method() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Default),
        json!({"method": "_foobar", "namespace": "testns"}),
        json!({}),
        Expect::NoSuchMethod,
    )
    .await;
}

#[tokio::test]
async fn message_with_endpoint_explicitly_exposed_without_exposed_method() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Explicit),
        json!({"method": "foo", "namespace": "testns"}),
        json!({}),
        Expect::NoSuchMethod,
    )
    .await;
}

#[tokio::test]
async fn message_with_endpoint_explicitly_exposed_with_exposed_method() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Explicit),
        json!({"method": "bar", "namespace": "testns"}),
        json!({}),
        Expect::Dispatched(0, "bar"),
    )
    .await;
}

/// The first compatible endpoint with the method wins, even when a later one also has it.
#[tokio::test]
async fn first_matching_endpoint_wins() {
    check(
        &[DEFAULT_TARGET, DEFAULT_TARGET],
        None,
        json!({"method": "foo"}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}
