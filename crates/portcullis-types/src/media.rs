//! Media types of manifests that the registry understands.

/// The manifest formats the registry stores and serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    DockerManifest,
    DockerManifestList,
    OciManifest,
    OciIndex,
    DockerSchema1,
    DockerSchema1Signed,
}

impl MediaType {
    pub const DOCKER_MANIFEST: &'static str =
        "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &'static str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const OCI_MANIFEST: &'static str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &'static str = "application/vnd.oci.image.index.v1+json";
    pub const SCHEMA1: &'static str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const SCHEMA1_SIGNED: &'static str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// Recognises a manifest media type (parameters after `;` are ignored).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let base = s.split(';').next().unwrap_or("").trim();
        match base {
            Self::DOCKER_MANIFEST => Some(Self::DockerManifest),
            Self::DOCKER_LIST => Some(Self::DockerManifestList),
            Self::OCI_MANIFEST => Some(Self::OciManifest),
            Self::OCI_INDEX => Some(Self::OciIndex),
            Self::SCHEMA1 => Some(Self::DockerSchema1),
            Self::SCHEMA1_SIGNED => Some(Self::DockerSchema1Signed),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DockerManifest => Self::DOCKER_MANIFEST,
            Self::DockerManifestList => Self::DOCKER_LIST,
            Self::OciManifest => Self::OCI_MANIFEST,
            Self::OciIndex => Self::OCI_INDEX,
            Self::DockerSchema1 => Self::SCHEMA1,
            Self::DockerSchema1Signed => Self::SCHEMA1_SIGNED,
        }
    }

    /// Whether this is an index (a list of manifests) rather than an image manifest.
    #[must_use]
    pub fn is_index(self) -> bool {
        matches!(self, Self::DockerManifestList | Self::OciIndex)
    }

    #[must_use]
    pub fn is_schema1(self) -> bool {
        matches!(self, Self::DockerSchema1 | Self::DockerSchema1Signed)
    }
}
