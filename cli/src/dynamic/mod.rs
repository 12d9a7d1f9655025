//! The dynamic codec: a method's payload messages from and to JSON, driven
//! by the checked IDL model, in every serializer, byte for byte as the
//! code idlc generates encodes them.
//!
//! JSON arguments are read against the schema first ([`MethodCodec::args`]),
//! which checks every type, range, enum name and union arm and names the
//! spot of a problem (`$.items[0].quantity`); then the value is written in
//! the call's serializer. Answers are read back the same way and printed in
//! PROTOCOL.md's JSON mapping.

mod msgpack;
mod postcard;
mod protobuf;
mod template;
mod value;

use courier::Serializer;
use serde_json::Value;

use crate::schema::{MethodSchema, Schema, SchemaError};
pub use value::Dyn;
use value::{Shape, message_from_json, message_to_json};

/// How deep values may nest (as prost's recursion limit).
pub(crate) const MAX_DEPTH: usize = 100;

/// A value could not be read, written or checked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DynError {
    /// The JSON does not fit the schema.
    #[error("{path}: {problem}")]
    Json {
        /// Where (`$.items[0].sku`).
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A payload could not be decoded with the schema.
    #[error("cannot decode the payload with the schema: {0}")]
    Decode(String),
    /// The schema itself is incomplete or inconsistent.
    #[error("the schema cannot describe this value: {0}")]
    Schema(String),
    /// Values nest deeper than [`MAX_DEPTH`].
    #[error("values nest more than 100 levels deep")]
    TooDeep,
    /// A serializer this tool cannot encode dynamically.
    #[error("the {0} serializer is not supported by the dynamic codec")]
    Unsupported(String),
}

/// The codec of one method's payload messages.
#[derive(Debug, Clone)]
pub struct MethodCodec<'a> {
    schema: &'a Schema,
    method: MethodSchema<'a>,
}

impl<'a> MethodCodec<'a> {
    /// The codec of `service/method` in `schema`.
    pub fn new(schema: &'a Schema, service: &str, method: &str) -> Result<Self, SchemaError> {
        Ok(MethodCodec {
            schema,
            method: schema.method(service, method)?,
        })
    }

    /// The method's schema.
    pub fn method(&self) -> &MethodSchema<'a> {
        &self.method
    }

    fn args_shape(&self) -> Shape<'a> {
        Shape::Struct(&self.method.method.params)
    }

    fn result_shape(&self) -> Shape<'_> {
        Shape::Struct(&self.method.result)
    }

    fn item_shape(&self) -> Shape<'_> {
        Shape::Struct(&self.method.item)
    }

    /// Whether the server streams the answer (a `stream` result).
    pub fn is_server_stream(&self) -> bool {
        !self.method.item.is_empty()
    }

    /// Decodes one stream item (message type 7): the item as JSON.
    pub fn decode_item(&self, serializer: Serializer, payload: &[u8]) -> Result<Value, DynError> {
        let message = self.decode(serializer, &self.item_shape(), payload)?;
        Ok(take_value(message))
    }

    fn error_shape(&self) -> Shape<'_> {
        Shape::Union(&self.method.errors)
    }

    /// Reads JSON arguments against the schema.
    pub fn args(&self, json: &Value) -> Result<Dyn, DynError> {
        message_from_json(self.schema, &self.args_shape(), json)
    }

    /// Checks JSON arguments and encodes them as the args message in
    /// `serializer` (JSON is written compactly as given).
    pub fn encode_args(&self, serializer: Serializer, json: &Value) -> Result<Vec<u8>, DynError> {
        let args = self.args(json)?;
        let mut buf = Vec::new();
        let shape = self.args_shape();
        match serializer {
            Serializer::Json => {
                buf = serde_json::to_vec(json).map_err(|e| DynError::Schema(e.to_string()))?
            }
            Serializer::Protobuf => protobuf::encode(self.schema, &shape, &args, &mut buf)?,
            Serializer::Postcard => postcard::encode(self.schema, &shape, &args, &mut buf)?,
            Serializer::MessagePack => msgpack::encode(self.schema, &shape, &args, &mut buf)?,
            other => return Err(DynError::Unsupported(other.name().to_owned())),
        }
        Ok(buf)
    }

    /// Decodes a status-0 payload: the return value as JSON, `None` for a
    /// `void` method.
    pub fn decode_result(
        &self,
        serializer: Serializer,
        payload: &[u8],
    ) -> Result<Option<Value>, DynError> {
        let message = self.decode(serializer, &self.result_shape(), payload)?;
        if self.method.result.is_empty() {
            return Ok(None);
        }
        Ok(Some(take_value(message)))
    }

    /// Decodes a status-1 payload: the declared error's type name and its
    /// value as JSON.
    pub fn decode_error(
        &self,
        serializer: Serializer,
        payload: &[u8],
    ) -> Result<(String, Value), DynError> {
        if self.method.errors.is_empty() {
            return Err(DynError::Decode(format!(
                "`{}` declares no errors, but a declared error came back",
                self.method.method.name
            )));
        }
        let message = self.decode(serializer, &self.error_shape(), payload)?;
        let Value::Object(object) = message else {
            return Err(DynError::Decode(
                "the error message is not an object".into(),
            ));
        };
        let Some((arm, value)) = object.into_iter().next() else {
            return Err(DynError::Decode("the error message sets no error".into()));
        };
        let name = self
            .method
            .errors
            .iter()
            .find(|e| e.name == arm)
            .and_then(|e| match &e.ty {
                idlc::model::FieldType::Named(r) => Some(r.name.clone()),
                _ => None,
            })
            .unwrap_or(arm);
        Ok((name, value))
    }

    fn decode(
        &self,
        serializer: Serializer,
        shape: &Shape<'_>,
        payload: &[u8],
    ) -> Result<Value, DynError> {
        let value = match serializer {
            Serializer::Json => {
                let json: Value = serde_json::from_slice(payload)
                    .map_err(|e| DynError::Decode(format!("not JSON: {e}")))?;
                // Passed through as the server wrote it.
                return Ok(json);
            }
            Serializer::Protobuf => protobuf::decode(self.schema, shape, payload)?,
            Serializer::Postcard => postcard::decode(self.schema, shape, payload)?,
            Serializer::MessagePack => msgpack::decode(self.schema, shape, payload)?,
            other => return Err(DynError::Unsupported(other.name().to_owned())),
        };
        message_to_json(self.schema, shape, &value)
    }

    /// A JSON template of the arguments: every parameter with an example
    /// value of its type.
    pub fn args_template(&self) -> Value {
        template::message(self.schema, &self.args_shape(), 0)
    }

    /// The method as the IDL writes it, parameters with their defaults:
    /// `list<Order> search(1: string query, 2: u32 limit = 10)`.
    pub fn signature(&self) -> String {
        let m = self.method.method;
        let params: Vec<String> = m
            .params
            .iter()
            .map(|p| {
                let default = p
                    .default
                    .as_ref()
                    .map_or_else(String::new, |v| format!(" = {}", idl_literal(v)));
                format!("{}: {} {}{default}", p.tag, idl_type(&p.ty), p.name)
            })
            .collect();
        let returns = match (m.streaming.server_item(), &m.returns) {
            (Some(item), _) => format!("stream {}", idl_type(item)),
            (None, Some(ty)) => idl_type(ty),
            (None, None) => "void".to_owned(),
        };
        let throws = if m.throws.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = m.throws.iter().map(|t| t.name.as_str()).collect();
            format!(" throws {}", names.join(", "))
        };
        let oneway = if m.oneway { "oneway " } else { "" };
        format!(
            "{oneway}{returns} {}({}){throws}",
            m.name,
            params.join(", ")
        )
    }
}

/// The `value` field of a result message.
fn take_value(message: Value) -> Value {
    match message {
        Value::Object(mut object) => object.remove("value").unwrap_or(Value::Null),
        other => other,
    }
}

/// A type as the IDL writes it.
fn idl_type(ty: &idlc::model::FieldType) -> String {
    use idlc::model::FieldType;
    match ty {
        FieldType::Scalar(s) => value::scalar_name(*s)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned(),
        FieldType::Named(r) => r.name.clone(),
        FieldType::List(inner) => format!("list<{}>", idl_type(inner)),
        FieldType::Map(k, v) => {
            format!("map<{}, {}>", idl_type(&FieldType::Scalar(*k)), idl_type(v))
        }
        FieldType::Optional(inner) => format!("optional {}", idl_type(inner)),
    }
}

/// A default value as the IDL writes it: `10`, `0.5`, `"a\"b"`, `true`,
/// `PAID`.
fn idl_literal(value: &idlc::model::Value) -> String {
    use idlc::model::Value;
    match value {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::String(s) => {
            let mut quoted = String::with_capacity(s.len() + 2);
            quoted.push('"');
            for c in s.chars() {
                match c {
                    '"' => quoted.push_str("\\\""),
                    '\\' => quoted.push_str("\\\\"),
                    '\n' => quoted.push_str("\\n"),
                    '\t' => quoted.push_str("\\t"),
                    c if c.is_control() => quoted.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
                    c => quoted.push(c),
                }
            }
            quoted.push('"');
            quoted
        }
        Value::EnumVariant(name) => name.clone(),
    }
}

/// Decodes a JSON result payload without a schema: the `value` field,
/// `None` for `{}` (a `void` method).
pub fn json_result(payload: &[u8]) -> Result<Option<Value>, DynError> {
    let json: Value =
        serde_json::from_slice(payload).map_err(|e| DynError::Decode(format!("not JSON: {e}")))?;
    match json {
        Value::Object(object) if object.is_empty() => Ok(None),
        other => Ok(Some(take_value(other))),
    }
}

/// Decodes a JSON declared-error payload without a schema: the arm's name
/// (the error type in snake_case) and the error's value.
pub fn json_error(payload: &[u8]) -> Result<(String, Value), DynError> {
    let json: Value =
        serde_json::from_slice(payload).map_err(|e| DynError::Decode(format!("not JSON: {e}")))?;
    match json {
        Value::Object(object) if object.len() == 1 => object
            .into_iter()
            .next()
            .ok_or_else(|| DynError::Decode("an empty error message".into())),
        other => Err(DynError::Decode(format!(
            "the error message is not an object with one key: {other}"
        ))),
    }
}

#[cfg(test)]
mod tests;
