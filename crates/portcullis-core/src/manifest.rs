//! Parsing and structural validation of manifests: Docker schema2 manifests and
//! manifest lists, OCI image manifests and indexes, and artifacts
//! (`artifactType`, `subject`). Schema1 is refused with an explanation.

use std::collections::BTreeMap;

use portcullis_types::{Digest, MediaType};
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// A content descriptor as it appears in manifests and in the referrers index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
    // schema1 markers
    fs_layers: Option<serde_json::Value>,
}

/// The parts of a manifest the registry acts on.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    pub media_type: MediaType,
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    /// Layers (image manifests) or child manifests (indexes).
    pub references: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ParsedManifest {
    /// The `artifactType` reported for this manifest in a referrers index.
    #[must_use]
    pub fn effective_artifact_type(&self) -> Option<String> {
        self.artifact_type.clone().or_else(|| {
            if self.media_type.is_index() {
                None
            } else {
                self.config.as_ref().map(|c| c.media_type.clone())
            }
        })
    }
}

const SCHEMA1_MSG: &str = "Docker schema1 manifests are not supported (deprecated since 2017); push with a current client, or convert with `skopeo copy --format v2s2`";

fn invalid(msg: impl Into<String>) -> CoreError {
    CoreError::ManifestInvalid(msg.into())
}

/// Parses manifest bytes. `content_type` is the request's Content-Type.
///
/// # Errors
/// `ManifestInvalid` for anything that is not a well-formed supported manifest.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, CoreError> {
    let header_type = content_type.and_then(MediaType::parse);
    if header_type.is_some_and(MediaType::is_schema1) {
        return Err(invalid(SCHEMA1_MSG));
    }
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON for its type: {e}")))?;
    if raw.fs_layers.is_some()
        || raw
            .schema_version
            .as_ref()
            .and_then(serde_json::Value::as_i64)
            == Some(1)
    {
        return Err(invalid(SCHEMA1_MSG));
    }
    if raw
        .schema_version
        .as_ref()
        .and_then(serde_json::Value::as_i64)
        != Some(2)
    {
        return Err(invalid("manifest must have \"schemaVersion\": 2"));
    }
    let body_type = match raw.media_type.as_deref() {
        Some(s) => Some(
            MediaType::parse(s)
                .ok_or_else(|| invalid(format!("unsupported manifest mediaType `{s}`")))?,
        ),
        None => None,
    };
    if let (Some(b), Some(h)) = (body_type, header_type)
        && b != h
    {
        return Err(invalid(format!(
            "Content-Type `{}` does not match the manifest's mediaType `{}`",
            h.as_str(),
            b.as_str()
        )));
    }
    let media_type = match body_type.or(header_type) {
        Some(t) => t,
        None if raw.manifests.is_some() => MediaType::OciIndex,
        None if raw.config.is_some() => MediaType::OciManifest,
        None => {
            return Err(invalid(
                "cannot tell the manifest type: set mediaType or Content-Type",
            ));
        }
    };
    if media_type.is_schema1() {
        return Err(invalid(SCHEMA1_MSG));
    }
    let references = if media_type.is_index() {
        if raw.config.is_some() || raw.layers.is_some() {
            return Err(invalid("an index must not have config or layers"));
        }
        raw.manifests
            .ok_or_else(|| invalid("an index needs a \"manifests\" array"))?
    } else {
        if raw.manifests.is_some() {
            return Err(invalid("an image manifest must not have \"manifests\""));
        }
        if raw.config.is_none() {
            return Err(invalid("an image manifest needs a \"config\" descriptor"));
        }
        let layers = raw
            .layers
            .ok_or_else(|| invalid("an image manifest needs a \"layers\" array"))?;
        if media_type == MediaType::DockerManifest && layers.is_empty() {
            // Docker accepts empty layer lists for some artifacts; OCI allows it too.
        }
        layers
    };
    if media_type != MediaType::OciManifest
        && media_type != MediaType::OciIndex
        && (raw.subject.is_some() || raw.artifact_type.is_some())
    {
        return Err(invalid(
            "subject and artifactType are only valid in OCI manifests and indexes",
        ));
    }
    for d in raw.config.iter().chain(&references).chain(&raw.subject) {
        if d.size < 0 {
            return Err(invalid(format!(
                "descriptor {} has a negative size",
                d.digest
            )));
        }
        if d.media_type.is_empty() {
            return Err(invalid(format!("descriptor {} has no mediaType", d.digest)));
        }
    }
    Ok(ParsedManifest {
        media_type,
        artifact_type: raw.artifact_type,
        config: raw.config,
        references,
        subject: raw.subject,
        annotations: raw.annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn oci(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D}","size":0}},"layers":[]{extra}}}"#
        )
    }

    #[test]
    fn parses_oci_manifest_with_subject() {
        let m = parse(
            oci(&format!(
                r#","artifactType":"a/b","subject":{{"mediaType":"x","digest":"{D}","size":1}}"#
            ))
            .as_bytes(),
            None,
        )
        .unwrap();
        assert_eq!(m.media_type, MediaType::OciManifest);
        assert_eq!(m.effective_artifact_type().as_deref(), Some("a/b"));
        assert!(m.subject.is_some());
    }

    #[test]
    fn rejects_bad_manifests() {
        assert!(parse(b"not json", None).is_err());
        assert!(
            parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None)
                .unwrap_err()
                .to_string()
                .contains("schema1")
        );
        assert!(parse(oci("").as_bytes(), Some(MediaType::DOCKER_MANIFEST)).is_err());
        assert!(parse(br#"{"schemaVersion":2}"#, None).is_err());
        let bad_digest = oci("").replace(D, "sha256:nope");
        assert!(parse(bad_digest.as_bytes(), None).is_err());
    }
}
