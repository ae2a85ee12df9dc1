//! TestSerializer (server side)

use super::*;

/// oslo's mocked NoOpSerializer: deserialize_context returns `dctxt`,
/// deserialize_entity returns `'d' + x`, serialize_entity `'s' + x` (None when falsy).
#[derive(Default)]
struct MockSerializer {
    dctxt: Context,
    deserialize_context_calls: Mutex<Vec<Context>>,
    deserialize_entity_calls: Mutex<Vec<(Context, Value)>>,
    serialize_entity_calls: Mutex<Vec<(Context, Value)>>,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

impl Serializer for MockSerializer {
    fn deserialize_context(&self, ctx: Context) -> Result<Context> {
        self.deserialize_context_calls.lock().unwrap().push(ctx);
        Ok(self.dctxt.clone())
    }

    fn deserialize_entity(&self, ctx: &Context, entity: Value) -> Result<Value> {
        self.deserialize_entity_calls
            .lock()
            .unwrap()
            .push((ctx.clone(), entity.clone()));
        Ok(json!(format!("d{}", entity.as_str().unwrap())))
    }

    fn serialize_entity(&self, ctx: &Context, entity: Value) -> Result<Value> {
        self.serialize_entity_calls
            .lock()
            .unwrap()
            .push((ctx.clone(), entity.clone()));
        Ok(if truthy(&entity) {
            json!(format!("s{}", entity.as_str().unwrap()))
        } else {
            Value::Null
        })
    }
}

async fn check_serializer(ctxt: Value, dctxt: Value, args: Value, retval: Value) {
    let serializer = Arc::new(MockSerializer {
        dctxt: Context::from_value(dctxt.clone()).unwrap(),
        ..Default::default()
    });
    let calls: Arc<Mutex<Vec<(Value, Value)>>> = Arc::default();
    let endpoint = {
        let calls = calls.clone();
        let retval = retval.clone();
        Endpoint::new().method("foo", move |ctx: Context, args: Map<String, Value>| {
            calls
                .lock()
                .unwrap()
                .push((Value::Object(ctx.0), Value::Object(args)));
            std::future::ready(Ok::<_, RemoteError>(retval.clone()))
        })
    };
    let dispatcher = Dispatcher::new(
        vec![endpoint],
        AccessPolicy::Default,
        serializer.clone(),
        false,
    )
    .unwrap();
    let request = Request::new(
        "foo",
        args.as_object().unwrap().clone(),
        Context::from_value(ctxt.clone()).unwrap(),
    );
    let result = dispatcher.dispatch(request.clone()).await.unwrap();

    let deserialized_args: Map<String, Value> = args
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!(format!("d{}", v.as_str().unwrap()))))
        .collect();
    assert_eq!(
        *calls.lock().unwrap(),
        vec![(dctxt.clone(), Value::Object(deserialized_args))]
    );
    let dctx = Context::from_value(dctxt).unwrap();
    assert_eq!(
        *serializer.deserialize_context_calls.lock().unwrap(),
        vec![Context::from_value(ctxt).unwrap()]
    );
    let expected_entity_calls: Vec<(Context, Value)> = args
        .as_object()
        .unwrap()
        .values()
        .map(|v| (dctx.clone(), v.clone()))
        .collect();
    assert_eq!(
        *serializer.deserialize_entity_calls.lock().unwrap(),
        expected_entity_calls
    );
    assert_eq!(
        *serializer.serialize_entity_calls.lock().unwrap(),
        vec![(dctx, retval.clone())]
    );
    if truthy(&retval) {
        assert_eq!(result, json!(format!("s{}", retval.as_str().unwrap())));
    } else {
        assert_eq!(result, Value::Null);
    }
}

#[tokio::test]
async fn serializer_no_args_or_retval() {
    check_serializer(json!({}), json!({}), json!({}), Value::Null).await;
}

#[tokio::test]
async fn serializer_args_and_retval() {
    check_serializer(
        json!({"user": "bob"}),
        json!({"user": "alice"}),
        json!({"a": "a", "b": "b", "c": "c"}),
        json!("d"),
    )
    .await;
}
