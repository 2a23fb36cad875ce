//! A hand-built OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`), so skopeo tests need no Docker daemon, plus a reader
//! for the layouts skopeo writes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use portcullis_testkit::oci::{
    OCI_CONFIG as CONFIG_TYPE, OCI_LAYER as LAYER_TYPE, OCI_MANIFEST as MANIFEST_TYPE, sha256,
};
use serde_json::{Value, json};

use super::process::{assert_success, run};
use super::{random_bytes, temp_dir};

/// One image stored in an [`OciLayout`].
#[derive(Clone, Debug)]
pub struct OciImage {
    /// Its tag (`org.opencontainers.image.ref.name`).
    pub tag: String,
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The config blob's digest.
    pub config_digest: String,
    /// The (compressed) layer blobs' digests, in order.
    pub layers: Vec<String>,
}

impl OciImage {
    /// Panics unless `copied` has this image's manifest, config and layer
    /// digests (after a round trip through a registry).
    #[track_caller]
    pub fn assert_same(&self, copied: &OciImage) {
        assert_eq!(
            copied.manifest_digest, self.manifest_digest,
            "manifest digest changed"
        );
        assert_eq!(
            copied.config_digest, self.config_digest,
            "config digest changed"
        );
        assert_eq!(copied.layers, self.layers, "layer digests changed");
    }
}

/// An OCI image layout directory that images can be added to.
pub struct OciLayout {
    dir: PathBuf,
    /// Descriptors for `index.json`.
    manifests: Vec<Value>,
}

impl OciLayout {
    /// Creates an empty layout in `dir` (made if missing).
    pub fn create(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir blobs/sha256");
        std::fs::write(
            dir.join("oci-layout"),
            json!({"imageLayoutVersion": "1.0.0"}).to_string(),
        )
        .expect("write oci-layout");
        let layout = Self {
            dir: dir.to_owned(),
            manifests: Vec::new(),
        };
        layout.write_index();
        layout
    }

    /// The layout's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `oci:DIR:TAG`, as skopeo names an image in this layout.
    pub fn reference(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }

    /// The bytes of the blob `digest` stored in this layout.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        read_blob(&self.dir, digest)
    }

    fn put_blob(&self, data: &[u8]) -> String {
        let digest = sha256(data);
        let hex = digest.trim_start_matches("sha256:");
        std::fs::write(self.dir.join("blobs/sha256").join(hex), data).expect("write blob");
        digest
    }

    fn write_index(&self) {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": self.manifests,
        });
        std::fs::write(self.dir.join("index.json"), index.to_string()).expect("write index.json");
    }

    /// Adds an image tagged `tag` with `layer_count` gzip layers of random
    /// files (`layer_size` bytes each), so each one is new.
    pub fn add_image(&mut self, tag: &str, layer_count: usize, layer_size: usize) -> OciImage {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for n in 0..layer_count {
            let (tar, gz) = random_layer(&format!("layer{n}.bin"), layer_size);
            diff_ids.push(sha256(&tar));
            let digest = self.put_blob(&gz);
            layers.push(json!({"mediaType": LAYER_TYPE, "digest": digest, "size": gz.len()}));
        }
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [format!("PORTCULLIS_TEST_TAG={tag}")]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "portcullis test harness"}],
        })
        .to_string();
        let config_digest = self.put_blob(config.as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config.len()},
            "layers": layers,
        })
        .to_string();
        let manifest_digest = self.put_blob(manifest.as_bytes());
        self.manifests.push(json!({
            "mediaType": MANIFEST_TYPE,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        self.write_index();
        OciImage {
            tag: tag.to_owned(),
            manifest_digest,
            config_digest,
            layers: layers
                .iter()
                .map(|l| l["digest"].as_str().expect("digest").to_owned())
                .collect(),
        }
    }
}

/// A tar holding one random file, and its gzip form.
fn random_layer(file: &str, size: usize) -> (Vec<u8>, Vec<u8>) {
    let work = temp_dir();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir layer root");
    std::fs::write(root.join(file), random_bytes(size)).expect("write layer file");
    let tar_path = work.path().join("layer.tar");
    let out = run(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar_path)
            .arg(file),
        None,
        Duration::from_secs(60),
    );
    assert_success("tar a layer", &out);
    let out = run(
        Command::new("gzip").arg("-nkf").arg(&tar_path),
        None,
        Duration::from_secs(60),
    );
    assert_success("gzip a layer", &out);
    let tar = std::fs::read(&tar_path).expect("read layer.tar");
    let gz = std::fs::read(work.path().join("layer.tar.gz")).expect("read layer.tar.gz");
    (tar, gz)
}

/// What an OCI layout written by someone else (skopeo) holds for `tag`.
pub fn read_layout_image(dir: &Path, tag: &str) -> OciImage {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("read index.json"))
            .expect("index.json is JSON");
    let descriptor = index["manifests"]
        .as_array()
        .expect("index.json has manifests")
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no manifest tagged {tag} in {index}"));
    let manifest_digest = descriptor["digest"].as_str().expect("digest").to_owned();
    let manifest_bytes = read_blob(dir, &manifest_digest);
    assert_eq!(
        sha256(&manifest_bytes),
        manifest_digest,
        "manifest blob does not match its digest"
    );
    let manifest: Value = serde_json::from_slice(&manifest_bytes).expect("manifest is JSON");
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .expect("manifest has layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("layer digest").to_owned())
        .collect();
    for layer in &layers {
        assert_eq!(&sha256(&read_blob(dir, layer)), layer, "layer blob corrupt");
    }
    OciImage {
        tag: tag.to_owned(),
        manifest_digest,
        config_digest: manifest["config"]["digest"]
            .as_str()
            .expect("config digest")
            .to_owned(),
        layers,
    }
}

fn read_blob(dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("unexpected digest {digest}"));
    std::fs::read(dir.join("blobs/sha256").join(hex))
        .unwrap_or_else(|e| panic!("read blob {digest}: {e}"))
}
