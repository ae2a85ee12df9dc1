//! oslo's failure JSON: how a server's exception travels to the caller.
//!
//! When an RPC endpoint raises, oslo.messaging's `serialize_remote_exception`
//! (`_drivers/common.py`) describes the exception as a JSON object and puts it, as a
//! *string*, into the reply's `failure` field:
//!
//! ```text
//! {"class": "ValueError", "module": "builtins", "message": "str(exc)",
//!  "tb": ["Traceback (most recent call last):\n", ...], "args": [...], "kwargs": {...}}
//! ```
//!
//! * `kwargs` is the exception's `kwargs` attribute when it has one, else `{}`.
//! * A class re-raised from another server carries a `_Remote` suffix on both its
//!   class and module name; the suffix is removed before sending. The traceback
//!   text is sent untouched.
//! * On receipt the modules `exceptions` (Python 2) and `builtins` (Python 3) mean
//!   the same thing.
//!
//! [`RemoteError`] holds one such failure, [`RemoteError::to_json`] writes it the way
//! Python's `json.dumps` does (same separators, non-ASCII escaped) and
//! [`RemoteError::from_json`] reads one.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Suffix oslo appends to the class and module of a rebuilt remote exception.
const REMOTE_POSTFIX: &str = "_Remote";
/// The module of Python 3's built-in exceptions.
const BUILTINS: &str = "builtins";
/// The module of Python 2's built-in exceptions.
const PY2_EXCEPTIONS: &str = "exceptions";

/// An exception raised by an RPC server, as described by oslo's failure JSON.
///
/// # Example
///
/// ```
/// use messaging_core::RemoteError;
///
/// let err = RemoteError::value_error("bad flavor")
///     .with_traceback(vec!["Traceback (most recent call last):\n".into()]);
/// let text = err.to_json();
/// assert!(text.starts_with(r#"{"class": "ValueError", "module": "builtins", "message": "bad flavor""#));
///
/// let back = RemoteError::from_json(&text).unwrap();
/// assert!(back.is("builtins", "ValueError"));
/// assert!(back.is("exceptions", "ValueError"));
/// assert_eq!(back, err);
///
/// let malformed = RemoteError::from_json(r#"{"class": 1, "module": "builtins"}"#);
/// assert!(malformed.unwrap_err().to_string().contains("\"class\""));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteError {
    /// Exception class name, e.g. `ValueError`.
    pub class: String,
    /// Python module of the class, e.g. `builtins`.
    pub module: String,
    /// `str(exception)`.
    pub message: String,
    /// Traceback lines.
    pub traceback: Vec<String>,
    /// Positional constructor arguments.
    pub args: Vec<Value>,
    /// Keyword constructor arguments.
    pub kwargs: Map<String, Value>,
    /// Marks an error the endpoint expects (oslo's `expected_exceptions`): logged at debug level.
    pub expected: bool,
}

impl RemoteError {
    /// A failure of `module.class` with `message`; its `args` are `[message]` (what
    /// Python's `Exception(message)` has), no kwargs and no traceback.
    pub fn new(
        class: impl Into<String>,
        module: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        RemoteError {
            class: class.into(),
            module: module.into(),
            args: vec![Value::String(message.clone())],
            message,
            ..RemoteError::default()
        }
    }

    /// A `builtins.ValueError`; a Python caller re-raises it as `ValueError`.
    pub fn value_error(message: impl Into<String>) -> Self {
        Self::new("ValueError", BUILTINS, message)
    }

    /// A `builtins.TypeError`.
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new("TypeError", BUILTINS, message)
    }

    /// A `builtins.KeyError`.
    pub fn key_error(message: impl Into<String>) -> Self {
        Self::new("KeyError", BUILTINS, message)
    }

    /// A `builtins.RuntimeError`.
    pub fn runtime_error(message: impl Into<String>) -> Self {
        Self::new("RuntimeError", BUILTINS, message)
    }

    /// Marks the error as expected by the endpoint (oslo's `expected_exceptions`), so
    /// the server logs it at debug level rather than as an error. Not sent on the wire.
    #[must_use]
    pub fn expected(mut self) -> Self {
        self.expected = true;
        self
    }

    /// Replaces the positional arguments.
    #[must_use]
    pub fn with_args(mut self, args: Vec<Value>) -> Self {
        self.args = args;
        self
    }

    /// Replaces the keyword arguments (Python's `exc.kwargs`).
    #[must_use]
    pub fn with_kwargs(mut self, kwargs: Map<String, Value>) -> Self {
        self.kwargs = kwargs;
        self
    }

    /// Replaces the traceback, one entry per `traceback.format_exception` item.
    #[must_use]
    pub fn with_traceback(mut self, traceback: Vec<String>) -> Self {
        self.traceback = traceback;
        self
    }

    /// Whether this is the exception `module.class`.
    ///
    /// The modules `builtins` and `exceptions` are the same, and a `_Remote` suffix on
    /// either name (on either side) is ignored, so `is("builtins", "ValueError")`
    /// matches a failure sent as `exceptions.ValueError` or `builtins_Remote.ValueError_Remote`.
    pub fn is(&self, module: &str, class: &str) -> bool {
        normal_module(&self.module) == normal_module(module)
            && strip_remote(&self.class) == strip_remote(class)
    }

    /// The failure as a JSON object, keys in oslo's order: `class`, `module`,
    /// `message`, `tb`, `args`, `kwargs`.
    ///
    /// As `serialize_remote_exception` does, a `_Remote` suffix is removed from the
    /// class and the module when both carry it; the traceback is left as it is.
    /// `expected` is not part of the wire format.
    pub fn to_value(&self) -> Value {
        let (class, module) = strip_remote_pair(&self.class, &self.module);
        let mut map = Map::with_capacity(6);
        map.insert("class".into(), Value::String(class.to_owned()));
        map.insert("module".into(), Value::String(module.to_owned()));
        map.insert("message".into(), Value::String(self.message.clone()));
        map.insert(
            "tb".into(),
            Value::Array(self.traceback.iter().cloned().map(Value::String).collect()),
        );
        map.insert("args".into(), Value::Array(self.args.clone()));
        map.insert("kwargs".into(), Value::Object(self.kwargs.clone()));
        Value::Object(map)
    }

    /// The failure JSON string exactly as Python's `serialize_remote_exception` makes
    /// it: the object of [`RemoteError::to_value`] written like `json.dumps` (`", "` and
    /// `": "` separators, non-ASCII characters as `\uXXXX` escapes, floats as Python's
    /// `repr`). This string goes into a reply's `failure` field.
    pub fn to_json(&self) -> String {
        python_json(&self.to_value())
    }

    /// Reads a received failure string (a reply's `failure` field).
    ///
    /// See [`RemoteError::from_value`] for what is required and what is tolerated;
    /// text that is not JSON gives [`Error::Malformed`].
    pub fn from_json(text: &str) -> Result<RemoteError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::Malformed(format!("failure is not valid JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// Reads an already parsed failure object.
    ///
    /// `class` and `module` must be strings. Like oslo's
    /// `deserialize_remote_exception`, which reads every field with `dict.get`, the
    /// others may be missing: `message` then is empty, `tb` and `args` empty lists and
    /// `kwargs` an empty map; `args` and `kwargs` may also be `null` (what Python sends
    /// for an exception whose `kwargs` attribute is `None`). A present field of the
    /// wrong type, or a value that is not an object, gives [`Error::Malformed`] naming
    /// it. Unknown fields are ignored. The module `exceptions` is read as `builtins`,
    /// and a `_Remote` suffix on both class and module is removed.
    pub fn from_value(value: &Value) -> Result<RemoteError> {
        let Value::Object(map) = value else {
            return Err(Error::Malformed(format!(
                "failure must be a JSON object, got {}",
                kind_of(value)
            )));
        };
        let class = required_string(map, "class")?;
        let module = required_string(map, "module")?;
        let message = match map.get("message") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(wrong_type("message", "a string", other)),
        };
        let traceback = match map.get("tb") {
            None => Vec::new(),
            Some(Value::Array(lines)) => lines
                .iter()
                .enumerate()
                .map(|(i, line)| match line {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(Error::Malformed(format!(
                        "failure field \"tb\" must be a list of strings, item {i} is {}",
                        kind_of(other)
                    ))),
                })
                .collect::<Result<Vec<_>>>()?,
            Some(other) => return Err(wrong_type("tb", "a list of strings", other)),
        };
        let args = match map.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(args)) => args.clone(),
            Some(other) => return Err(wrong_type("args", "a list", other)),
        };
        let kwargs = match map.get("kwargs") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(kwargs)) => kwargs.clone(),
            Some(other) => return Err(wrong_type("kwargs", "an object", other)),
        };
        let (class, module) = strip_remote_pair(class, module);
        let module = if module == PY2_EXCEPTIONS {
            BUILTINS
        } else {
            module
        };
        Ok(RemoteError {
            class: class.to_owned(),
            module: module.to_owned(),
            message,
            traceback,
            args,
            kwargs,
            expected: false,
        })
    }
}

/// Reads like oslo's `RemoteError`: `Remote error: <class> <message>`, then the
/// traceback on the following lines when there is one.
impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote error: {}", self.class)?;
        if !self.message.is_empty() {
            write!(f, " {}", self.message)?;
        }
        let mut tb = String::new();
        for line in &self.traceback {
            if !tb.is_empty() && !tb.ends_with('\n') {
                tb.push('\n');
            }
            tb.push_str(line);
        }
        let tb = tb.trim_end_matches(['\n', '\r']);
        if !tb.is_empty() {
            write!(f, "\n{tb}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RemoteError {}

fn strip_remote(name: &str) -> &str {
    name.strip_suffix(REMOTE_POSTFIX).unwrap_or(name)
}

fn normal_module(module: &str) -> &str {
    match strip_remote(module) {
        PY2_EXCEPTIONS => BUILTINS,
        other => other,
    }
}

/// oslo strips the suffix only when class and module both end with it.
fn strip_remote_pair<'a>(class: &'a str, module: &'a str) -> (&'a str, &'a str) {
    match (
        class.strip_suffix(REMOTE_POSTFIX),
        module.strip_suffix(REMOTE_POSTFIX),
    ) {
        (Some(class), Some(module)) => (class, module),
        _ => (class, module),
    }
}

fn required_string<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s),
        None => Err(Error::Malformed(format!(
            "failure field {field:?} is missing; it must be a string"
        ))),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

fn wrong_type(field: &str, wanted: &str, got: &Value) -> Error {
    Error::Malformed(format!(
        "failure field {field:?} must be {wanted}, got {}",
        kind_of(got)
    ))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Writes `value` as Python's `json.dumps` with default options does.
pub(crate) fn python_json(value: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    match value.serialize(&mut ser) {
        // Only ASCII is written, so the bytes are valid UTF-8.
        Ok(()) => String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        // Writing a `Value` into a `Vec` does not fail; fall back to compact JSON anyway.
        Err(_) => value.to_string(),
    }
}

/// Python's item separator `", "`, before every item but the first of a list or object.
fn item_separator<W: ?Sized + std::io::Write>(writer: &mut W, first: bool) -> std::io::Result<()> {
    if first {
        Ok(())
    } else {
        writer.write_all(b", ")
    }
}

/// `json.dumps` defaults: `separators=(", ", ": ")`, `ensure_ascii=True`, float `repr`.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        item_separator(writer, first)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        item_separator(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }

    // serde_json already escapes `"`, `\` and control characters like Python
    // (`\n`, `\u001f`, lowercase hex); the rest of a string arrives here.
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        writer.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f32,
    ) -> std::io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }
}

/// Python's `repr(float)`: the shortest digits that read back as the same number
/// (the closest such when several are as short), positional for decimal exponents
/// -4 to 15, else `d.ddde+XX`; whole numbers keep a `.0`.
fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value == 0.0 {
        return format!("{sign}0.0");
    }
    // serde_json writes floats with Ryu (shortest, closest digits), in either
    // positional ("0.0001", "123.5") or exponent ("1e16", "1.5e-7") form; take its
    // digits and decimal exponent and lay them out the way Python does.
    let text = serde_json::to_string(&value.abs()).unwrap_or_default();
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text.as_str(), 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = format!("{int_part}{frac_part}");
    let leading = all_digits.len() - all_digits.trim_start_matches('0').len();
    let digits = all_digits.trim_matches('0');
    if digits.is_empty() {
        return format!("{sign}0.0");
    }
    // value = 0.<digits> x 10^point
    let point = int_part.len() as i32 + exp - leading as i32;
    let exponent = point - 1; // value = d.ddd x 10^exponent
    if !(-4..16).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{dot}{rest}e{exp_sign}{:02}",
            exponent.unsigned_abs()
        )
    } else if point <= 0 {
        let zeros = "0".repeat(point.unsigned_abs() as usize);
        format!("{sign}0.{zeros}{digits}")
    } else {
        let int_len = point as usize;
        if digits.len() <= int_len {
            let zeros = "0".repeat(int_len - digits.len());
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (int, frac) = digits.split_at(int_len);
            format!("{sign}{int}.{frac}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEST_MODULE: &str = "oslo_messaging.tests.test_exception_serialization";

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn keys_in_order(text: &str) -> Vec<String> {
        match serde_json::from_str::<Value>(text).unwrap() {
            Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    /// The failure Python's `deserialize_remote_exception` tests feed in.
    fn received(class: &str, module: &str, args: Value, kwargs: Value) -> String {
        json!({
            "class": class,
            "module": module,
            "message": "test",
            "tb": ["traceback\ntraceback\n"],
            "args": args,
            "kwargs": kwargs,
        })
        .to_string()
    }

    fn malformed(text: &str) -> String {
        match RemoteError::from_json(text) {
            Err(Error::Malformed(msg)) => msg,
            other => panic!("expected Malformed for {text}, got {other:?}"),
        }
    }

    // ---- serialize_remote_exception scenarios (add_remote x exception type) ----

    /// Checks one serialize scenario: the failure as a Python server would hold it,
    /// and what must arrive.
    fn check_serialized(err: &RemoteError, class: &str, module: &str, msg: &str, kwargs: Value) {
        let text = err.to_json();
        let failure: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(failure["class"], json!(class), "{text}");
        assert_eq!(failure["module"], json!(module), "{text}");
        assert_eq!(failure["message"], json!(msg), "{text}");
        assert_eq!(failure["args"], json!([msg]), "{text}");
        assert_eq!(failure["kwargs"], kwargs, "{text}");
        assert_eq!(
            keys_in_order(&text),
            ["class", "module", "message", "tb", "args", "kwargs"]
        );
        // The traceback is sent as it is, `_Remote` included.
        let tb: String = failure["tb"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let last_class = err.class.as_str();
        assert!(tb.contains(&format!("{last_class}: {msg}")), "{tb}");
    }

    fn python_tb(class: &str, msg: &str) -> Vec<String> {
        vec![
            "Traceback (most recent call last):\n".into(),
            "  File \"test_exception_serialization.py\", line 101, in test\n    raise ex\n".into(),
            format!("{class}: {msg}\n"),
        ]
    }

    #[test]
    fn serialize_bog_standard() {
        let err = RemoteError::new("Exception", "builtins", "test")
            .with_traceback(python_tb("Exception", "test"));
        check_serialized(&err, "Exception", "builtins", "test", json!({}));
    }

    #[test]
    fn serialize_bog_standard_add_remote() {
        // A built-in exception cannot be retyped to `Exception_Remote`, so Python
        // keeps the class; model the retyped form too to check the stripping.
        let err = RemoteError::new("Exception_Remote", "builtins_Remote", "test")
            .with_traceback(python_tb("Exception_Remote", "test"));
        check_serialized(&err, "Exception", "builtins", "test", json!({}));
    }

    #[test]
    fn serialize_nova_style() {
        let err = RemoteError::new("NovaStyleException", TEST_MODULE, "I am Nova")
            .with_traceback(python_tb("NovaStyleException", "I am Nova"));
        check_serialized(
            &err,
            "NovaStyleException",
            TEST_MODULE,
            "I am Nova",
            json!({}),
        );
    }

    #[test]
    fn serialize_nova_style_add_remote() {
        let err = RemoteError::new(
            "NovaStyleException_Remote",
            format!("{TEST_MODULE}_Remote"),
            "I am Nova",
        )
        .with_traceback(python_tb("NovaStyleException_Remote", "I am Nova"));
        check_serialized(
            &err,
            "NovaStyleException",
            TEST_MODULE,
            "I am Nova",
            json!({}),
        );
    }

    #[test]
    fn serialize_nova_style_with_msg() {
        let err = RemoteError::new("NovaStyleException", TEST_MODULE, "testing")
            .with_traceback(python_tb("NovaStyleException", "testing"));
        check_serialized(
            &err,
            "NovaStyleException",
            TEST_MODULE,
            "testing",
            json!({}),
        );
    }

    #[test]
    fn serialize_nova_style_with_msg_add_remote() {
        let err = RemoteError::new(
            "NovaStyleException_Remote",
            format!("{TEST_MODULE}_Remote"),
            "testing",
        )
        .with_traceback(python_tb("NovaStyleException_Remote", "testing"));
        check_serialized(
            &err,
            "NovaStyleException",
            TEST_MODULE,
            "testing",
            json!({}),
        );
    }

    #[test]
    fn serialize_kwargs_style() {
        let err = RemoteError::new("KwargsStyleException", TEST_MODULE, "I am Oslo")
            .with_kwargs(obj(json!({"who": "Oslo"})))
            .with_traceback(python_tb("KwargsStyleException", "I am Oslo"));
        check_serialized(
            &err,
            "KwargsStyleException",
            TEST_MODULE,
            "I am Oslo",
            json!({"who": "Oslo"}),
        );
    }

    #[test]
    fn serialize_kwargs_style_add_remote() {
        let err = RemoteError::new(
            "KwargsStyleException_Remote",
            format!("{TEST_MODULE}_Remote"),
            "I am Oslo",
        )
        .with_kwargs(obj(json!({"who": "Oslo"})))
        .with_traceback(python_tb("KwargsStyleException_Remote", "I am Oslo"));
        check_serialized(
            &err,
            "KwargsStyleException",
            TEST_MODULE,
            "I am Oslo",
            json!({"who": "Oslo"}),
        );
    }

    #[test]
    fn serialize_exact_string() {
        let err = RemoteError::value_error("invalid literal")
            .with_traceback(vec![
                "Traceback (most recent call last):\n".into(),
                "ValueError: invalid literal\n".into(),
            ])
            .with_kwargs(obj(
                json!({"code": 400, "ratio": 0.5, "ok": true, "x": null}),
            ));
        assert_eq!(
            err.to_json(),
            r#"{"class": "ValueError", "module": "builtins", "message": "invalid literal", "tb": ["Traceback (most recent call last):\n", "ValueError: invalid literal\n"], "args": ["invalid literal"], "kwargs": {"code": 400, "ratio": 0.5, "ok": true, "x": null}}"#
        );
        assert_eq!(
            serde_json::from_str::<Value>(&err.to_json()).unwrap(),
            json!({
                "class": "ValueError",
                "module": "builtins",
                "message": "invalid literal",
                "tb": ["Traceback (most recent call last):\n", "ValueError: invalid literal\n"],
                "args": ["invalid literal"],
                "kwargs": {"code": 400, "ratio": 0.5, "ok": true, "x": null},
            })
        );
    }

    #[test]
    fn serialize_empty_collections() {
        let err = RemoteError::new("E", "m", "").with_args(vec![]);
        assert_eq!(
            err.to_json(),
            r#"{"class": "E", "module": "m", "message": "", "tb": [], "args": [], "kwargs": {}}"#
        );
    }

    #[test]
    fn serialize_escapes_like_python() {
        // json.dumps(ensure_ascii=True): non-ASCII and DEL as \uXXXX, astral as a
        // surrogate pair, controls as \n or \u00XX.
        let err = RemoteError::runtime_error("caf\u{e9} \u{1f600} \"q\" \\ \u{7f}\u{1}\t");
        let text = err.to_json();
        assert!(
            text.contains(r#""message": "caf\u00e9 \ud83d\ude00 \"q\" \\ \u007f\u0001\t""#),
            "{text}"
        );
        assert!(text.is_ascii());
        assert_eq!(RemoteError::from_json(&text).unwrap(), err);
    }

    #[test]
    fn serialize_floats_like_python_repr() {
        for (value, repr) in [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.5, "0.5"),
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e20, "1.2345e+20"),
            (-2.5e300, "-2.5e+300"),
            (123.456, "123.456"),
            // Two 17-digit strings read back as this number; Python picks the closer.
            (-1113178120592002.2, "-1113178120592002.2"),
            (-233891771783429.62, "-233891771783429.62"),
        ] {
            assert_eq!(python_float_repr(value), repr, "{value}");
        }
        let err = RemoteError::type_error("t").with_args(vec![json!(1e16), json!(0.25)]);
        assert!(err.to_json().contains(r#""args": [1e+16, 0.25]"#));
    }

    #[test]
    fn serialize_strips_remote_only_when_both_names_carry_it() {
        let text = RemoteError::new("Foo_Remote", "bar", "x").to_json();
        assert!(text.starts_with(r#"{"class": "Foo_Remote", "module": "bar""#));
        let text = RemoteError::new("Foo", "bar_Remote", "x").to_json();
        assert!(text.starts_with(r#"{"class": "Foo", "module": "bar_Remote""#));
        let text = RemoteError::new("Foo_Remote", "bar_Remote", "x").to_json();
        assert!(text.starts_with(r#"{"class": "Foo", "module": "bar""#));
    }

    #[test]
    fn expected_is_not_on_the_wire() {
        let err = RemoteError::key_error("k").expected();
        assert!(err.expected);
        assert!(!err.to_json().contains("expected"));
        assert!(!RemoteError::from_json(&err.to_json()).unwrap().expected);
    }

    #[test]
    fn constructors() {
        let err = RemoteError::new("C", "m", "msg");
        assert_eq!(err.args, vec![json!("msg")]);
        assert!(err.kwargs.is_empty() && err.traceback.is_empty() && !err.expected);
        for (err, class) in [
            (RemoteError::value_error("m"), "ValueError"),
            (RemoteError::type_error("m"), "TypeError"),
            (RemoteError::key_error("m"), "KeyError"),
            (RemoteError::runtime_error("m"), "RuntimeError"),
        ] {
            assert_eq!(
                (err.class.as_str(), err.module.as_str()),
                (class, "builtins")
            );
            assert_eq!(err.message, "m");
        }
    }

    // ---- deserialize_remote_exception scenarios ----

    #[test]
    fn deserialize_bog_standard() {
        let err = RemoteError::from_json(&received(
            "Exception",
            "builtins",
            json!(["test"]),
            json!({}),
        ))
        .unwrap();
        assert_eq!(err.class, "Exception");
        assert_eq!(err.module, "builtins");
        assert_eq!(err.message, "test");
        assert_eq!(err.traceback, vec!["traceback\ntraceback\n"]);
        assert_eq!(err.args, vec![json!("test")]);
        assert!(err.kwargs.is_empty());
        assert_eq!(
            err.to_string(),
            "Remote error: Exception test\ntraceback\ntraceback"
        );
    }

    #[test]
    fn deserialize_different_python_versions() {
        let err = RemoteError::from_json(&received(
            "Exception",
            "exceptions",
            json!(["test"]),
            json!({}),
        ))
        .unwrap();
        assert_eq!(err.module, "builtins");
        assert!(err.is("builtins", "Exception"));
        assert!(err.is("exceptions", "Exception"));
    }

    #[test]
    fn deserialize_nova_style() {
        let err = RemoteError::from_json(&received(
            "NovaStyleException",
            TEST_MODULE,
            json!([]),
            json!({}),
        ))
        .unwrap();
        assert!(err.is(TEST_MODULE, "NovaStyleException"));
        assert!(err.is(
            &format!("{TEST_MODULE}_Remote"),
            "NovaStyleException_Remote"
        ));
        assert!(err.args.is_empty());
        assert_eq!(err.message, "test");
    }

    #[test]
    fn deserialize_nova_style_with_msg() {
        // The message and the args are kept as sent, even when they differ.
        let err = RemoteError::from_json(&received(
            "NovaStyleException",
            TEST_MODULE,
            json!(["testing"]),
            json!({}),
        ))
        .unwrap();
        assert_eq!(err.message, "test");
        assert_eq!(err.args, vec![json!("testing")]);
    }

    #[test]
    fn deserialize_kwargs_style() {
        let err = RemoteError::from_json(&received(
            "KwargsStyleException",
            TEST_MODULE,
            json!([]),
            json!({"who": "Oslo"}),
        ))
        .unwrap();
        assert_eq!(err.kwargs, obj(json!({"who": "Oslo"})));
    }

    /// Python turns these into `oslo_messaging.RemoteError` (module not allowed, not
    /// importable, unknown class, unknown kwarg, not an `Exception`); here every
    /// failure is a `RemoteError` keeping class, message and traceback.
    #[test]
    fn deserialize_not_rebuildable_failures() {
        for (class, module, kwargs) in [
            ("NovaStyleException", TEST_MODULE, json!({})), // not_allowed
            ("Exception", "notexist", json!({})),           // unknown_module
            ("FarcicalError", "builtins", json!({})),       // unknown_exception
            ("Exception", "builtins", json!({"foobar": "blaa"})), // unknown_kwarg
            ("SystemExit", "builtins", json!({})),          // system_exit
        ] {
            let err = RemoteError::from_json(&received(class, module, json!([]), kwargs.clone()))
                .unwrap();
            assert!(err.is(module, class));
            assert_eq!(err.message, "test");
            assert_eq!(err.traceback, vec!["traceback\ntraceback\n"]);
            assert_eq!(Value::Object(err.kwargs.clone()), kwargs);
            assert_eq!(
                err.to_string(),
                format!("Remote error: {class} test\ntraceback\ntraceback")
            );
        }
    }

    #[test]
    fn deserialize_strips_remote_suffix() {
        let err = RemoteError::from_json(&received(
            "NovaStyleException_Remote",
            &format!("{TEST_MODULE}_Remote"),
            json!([]),
            json!({}),
        ))
        .unwrap();
        assert_eq!(err.class, "NovaStyleException");
        assert_eq!(err.module, TEST_MODULE);
        let err = RemoteError::from_json(&received(
            "Exception_Remote",
            "exceptions_Remote",
            json!([]),
            json!({}),
        ))
        .unwrap();
        assert_eq!(
            (err.class.as_str(), err.module.as_str()),
            ("Exception", "builtins")
        );
    }

    #[test]
    fn is_matching() {
        let err = RemoteError::value_error("x");
        assert!(err.is("builtins", "ValueError"));
        assert!(err.is("exceptions", "ValueError"));
        assert!(err.is("builtins_Remote", "ValueError_Remote"));
        assert!(err.is("exceptions_Remote", "ValueError"));
        assert!(!err.is("builtins", "TypeError"));
        assert!(!err.is("nova.exception", "ValueError"));
        let err = RemoteError::new("ValueError_Remote", "exceptions", "x");
        assert!(err.is("builtins", "ValueError"));
    }

    #[test]
    fn kwargs_round_trip() {
        let err = RemoteError::new(
            "InstanceNotFound",
            "nova.exception",
            "Instance 42 could not be found.",
        )
        .with_args(vec![])
        .with_kwargs(obj(json!({
            "instance_id": 42,
            "nested": {"b": [1, 2.5, "z"], "a": null},
            "flag": false,
            "name": "\u{fc}ber",
        })))
        .with_traceback(python_tb(
            "InstanceNotFound",
            "Instance 42 could not be found.",
        ));
        let back = RemoteError::from_json(&err.to_json()).unwrap();
        assert_eq!(back, err);
        assert_eq!(
            back.kwargs.keys().collect::<Vec<_>>(),
            ["instance_id", "nested", "flag", "name"]
        );
        assert_eq!(RemoteError::from_value(&err.to_value()).unwrap(), err);
    }

    #[test]
    fn optional_fields_may_be_missing() {
        let err =
            RemoteError::from_json(r#"{"class": "ValueError", "module": "builtins"}"#).unwrap();
        assert_eq!(err.message, "");
        assert!(err.traceback.is_empty() && err.args.is_empty() && err.kwargs.is_empty());
        assert_eq!(err.to_string(), "Remote error: ValueError");
        let err = RemoteError::from_json(
            r#"{"class": "E", "module": "m", "message": "x", "args": null, "kwargs": null, "extra": 1}"#,
        )
        .unwrap();
        assert!(err.args.is_empty() && err.kwargs.is_empty());
    }

    #[test]
    fn display() {
        assert_eq!(
            RemoteError::value_error("boom").to_string(),
            "Remote error: ValueError boom"
        );
        let err = RemoteError::value_error("boom").with_traceback(vec![
            "Traceback (most recent call last):\n".into(),
            "  File \"x.py\", line 1, in f\n".into(),
            "ValueError: boom\n".into(),
        ]);
        assert_eq!(
            err.to_string(),
            "Remote error: ValueError boom\nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nValueError: boom"
        );
        let err = RemoteError::value_error("boom").with_traceback(vec!["a".into(), "b".into()]);
        assert_eq!(err.to_string(), "Remote error: ValueError boom\na\nb");
        let wrapped = Error::Remote(Box::new(RemoteError::key_error("k")));
        assert_eq!(wrapped.to_string(), "Remote error: KeyError k");
    }

    // ---- malformed input ----

    #[test]
    fn malformed_not_json() {
        assert!(malformed("{not json").contains("not valid JSON"));
        assert!(malformed("").contains("not valid JSON"));
        let deep = "[".repeat(10_000);
        assert!(malformed(&deep).contains("not valid JSON"));
    }

    #[test]
    fn malformed_not_an_object() {
        assert!(malformed("[1, 2]").contains("must be a JSON object, got a list"));
        assert!(malformed("\"ValueError\"").contains("got a string"));
        assert!(malformed("null").contains("got null"));
        assert!(malformed("3").contains("got a number"));
    }

    #[test]
    fn malformed_class() {
        assert_eq!(
            malformed(r#"{"module": "builtins"}"#),
            "failure field \"class\" is missing; it must be a string"
        );
        assert_eq!(
            malformed(r#"{"class": 1, "module": "builtins"}"#),
            "failure field \"class\" must be a string, got a number"
        );
        let msg = malformed(r#"{"class": null, "module": "builtins"}"#);
        assert!(msg.contains("\"class\"") && msg.contains("null"));
    }

    #[test]
    fn malformed_module() {
        assert!(malformed(r#"{"class": "E"}"#).contains("\"module\" is missing"));
        assert_eq!(
            malformed(r#"{"class": "E", "module": ["builtins"]}"#),
            "failure field \"module\" must be a string, got a list"
        );
    }

    #[test]
    fn malformed_message() {
        assert_eq!(
            malformed(r#"{"class": "E", "module": "m", "message": null}"#),
            "failure field \"message\" must be a string, got null"
        );
        assert!(
            malformed(r#"{"class": "E", "module": "m", "message": {}}"#).contains("\"message\"")
        );
    }

    #[test]
    fn malformed_tb() {
        assert_eq!(
            malformed(r#"{"class": "E", "module": "m", "tb": "Traceback"}"#),
            "failure field \"tb\" must be a list of strings, got a string"
        );
        assert_eq!(
            malformed(r#"{"class": "E", "module": "m", "tb": ["ok", 2]}"#),
            "failure field \"tb\" must be a list of strings, item 1 is a number"
        );
        assert!(malformed(r#"{"class": "E", "module": "m", "tb": null}"#).contains("\"tb\""));
    }

    #[test]
    fn malformed_args() {
        assert_eq!(
            malformed(r#"{"class": "E", "module": "m", "args": "test"}"#),
            "failure field \"args\" must be a list, got a string"
        );
        assert!(malformed(r#"{"class": "E", "module": "m", "args": {}}"#).contains("\"args\""));
    }

    #[test]
    fn malformed_kwargs() {
        assert_eq!(
            malformed(r#"{"class": "E", "module": "m", "kwargs": []}"#),
            "failure field \"kwargs\" must be an object, got a list"
        );
        assert!(
            malformed(r#"{"class": "E", "module": "m", "kwargs": true}"#).contains("a boolean")
        );
    }

    #[test]
    fn malformed_error_display() {
        let err = RemoteError::from_value(&json!({"class": 1})).unwrap_err();
        assert!(matches!(err, Error::Malformed(_)));
        assert_eq!(
            err.to_string(),
            "malformed message: failure field \"class\" must be a string, got a number"
        );
    }
}
