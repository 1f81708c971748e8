//! Quay's answers as the recording shows them: the RFC 7807-style error
//! body, robots' bare `{message}`, the CSRF refusal served as text/html,
//! Flask's HTML 500 page, jsonschema's validation texts, and 204s that
//! still say `application/json`.

use axum::body::Body as HttpBody;
use axum::http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

/// The body of an answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Body {
    /// A JSON value; `Null` is written `null` (changevisibility on a missing repository).
    Json(Value),
    /// Quay's usual error body: `error_type` and the message.
    Error { kind: &'static str, message: String },
    /// `{"message": ...}`, what robot endpoints answer for an absent robot.
    Message(String),
    /// No body (204), still labelled `application/json` as Quay does.
    Empty,
    /// A write with an unknown token: the CSRF check refuses it first.
    Csrf,
    /// An unhandled exception in Quay: Flask's HTML page.
    ServerError,
}

/// An answer in Quay's shape.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Body,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, v: Value) -> Reply {
        Reply {
            status,
            body: Body::Json(v),
        }
    }

    pub(crate) fn error(
        status: StatusCode,
        kind: &'static str,
        message: impl Into<String>,
    ) -> Reply {
        Reply {
            status,
            body: Body::Error {
                kind,
                message: message.into(),
            },
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Reply {
        Self::error(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub(crate) fn message(status: StatusCode, text: &str) -> Reply {
        Reply {
            status,
            body: Body::Message(text.to_string()),
        }
    }

    pub(crate) fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: Body::Empty,
        }
    }

    pub(crate) fn not_found() -> Reply {
        Self::error(StatusCode::NOT_FOUND, "not_found", "Not Found")
    }

    /// A valid token without the scope or role, or an organization that
    /// does not exist: the permission check comes first.
    pub(crate) fn unauthorized() -> Reply {
        Self::error(StatusCode::FORBIDDEN, "insufficient_scope", "Unauthorized")
    }

    /// A GET without a known token.
    pub(crate) fn requires_authentication() -> Reply {
        Self::error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Requires authentication",
        )
    }

    pub(crate) fn csrf() -> Reply {
        Reply {
            status: StatusCode::FORBIDDEN,
            body: Body::Csrf,
        }
    }

    pub(crate) fn server_error() -> Reply {
        Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: Body::ServerError,
        }
    }

    /// The JSON body, for tests (`Null` for non-JSON bodies).
    #[cfg(test)]
    pub(crate) fn value(&self, host: &str) -> Value {
        match &self.body {
            Body::Json(v) => v.clone(),
            Body::Error { kind, message } => error_body(self.status, kind, message, host),
            Body::Message(m) => json!({ "message": m }),
            _ => Value::Null,
        }
    }

    /// The HTTP answer; `host` goes into the error body's `type` URL as
    /// Quay puts its own address there.
    pub(crate) fn render(self, host: &str) -> Response<HttpBody> {
        let (content_type, text) = match self.body {
            Body::Json(v) => (JSON, format!("{v}\n")),
            Body::Error { kind, message } => (
                JSON,
                format!("{}\n", error_body(self.status, kind, &message, host)),
            ),
            Body::Message(m) => (JSON, format!("{}\n", json!({ "message": m }))),
            Body::Empty => (JSON, String::new()),
            Body::Csrf => (
                HTML,
                "{\"error\": \"CSRF token was invalid or missing.\"}\n".to_string(),
            ),
            Body::ServerError => (HTML, SERVER_ERROR_PAGE.to_string()),
        };
        let mut resp = Response::new(HttpBody::from(text));
        *resp.status_mut() = self.status;
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        resp
    }
}

const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

/// Flask's page for an unhandled exception, as recorded (`perm.put.missing_repo`).
const SERVER_ERROR_PAGE: &str = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.</p>\n";

fn error_body(status: StatusCode, kind: &str, message: &str, host: &str) -> Value {
    json!({
        "detail": message,
        "error_message": message,
        "error_type": kind,
        "title": kind,
        "type": format!("http://{host}/api/v1/error/{kind}"),
        "status": status.as_u16(),
    })
}

/// Python's `repr` of a string, as jsonschema quotes values.
fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// jsonschema's message for a value outside an `enum` of a request
/// property, word for word as Quay passes it on.
pub(crate) fn enum_violation(
    field: &str,
    description: &str,
    options: &[&str],
    value: &str,
) -> Reply {
    let list = options
        .iter()
        .map(|o| py_repr(o))
        .collect::<Vec<_>>()
        .join(", ");
    Reply::invalid(format!(
        "{} is not one of [{list}]\n\nFailed validating 'enum' in schema['properties']['{field}']:\n    {{'description': {},\n     'enum': [{list}],\n     'type': 'string'}}\n\nOn instance['{field}']:\n    {}",
        py_repr(value),
        py_repr(description),
        py_repr(value),
    ))
}

/// jsonschema's message for a string over `maxLength` (not recorded: the
/// recording says only that such robot descriptions get 400).
pub(crate) fn too_long(field: &str, max: usize, value: &str) -> Reply {
    Reply::invalid(format!(
        "{} is too long\n\nFailed validating 'maxLength' in schema['properties']['{field}']:\n    {{'maxLength': {max}, 'type': 'string'}}",
        py_repr(value)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_messages_match_the_recording() {
        let r = enum_violation(
            "visibility",
            "Visibility which the repository will start with",
            &["public", "private"],
            "secret",
        );
        let want = "'secret' is not one of ['public', 'private']\n\nFailed validating 'enum' in schema['properties']['visibility']:\n    {'description': 'Visibility which the repository will start with',\n     'enum': ['public', 'private'],\n     'type': 'string'}\n\nOn instance['visibility']:\n    'secret'";
        assert_eq!(r.value("h")["error_message"], want);
        assert_eq!(
            r.value("h")["type"],
            "http://h/api/v1/error/invalid_request"
        );
    }
}
