//! `bench/run.sh` builds and runs the binary where cargo puts it:
//! `$CARGO_TARGET_DIR/release/portcullis` when that is set. Checked with a
//! fresh stub binary there and a `cargo` on `PATH` that only records that it
//! was called: the script must find the stub and not build. Runs everywhere.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn link_tool(bin: &Path, name: &str) {
    let real = common::find_in_path(name).unwrap_or_else(|| panic!("{name} is not installed"));
    std::os::unix::fs::symlink(real, bin.join(name)).unwrap();
}

#[test]
fn run_sh_uses_the_binary_under_cargo_target_dir() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = common::temp_dir();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // Only what the build step needs: no curl or wrk, so the script stops
    // right after it, at the tool check.
    for tool in ["bash", "dirname", "find"] {
        link_tool(&bin, tool);
    }
    let called = dir.path().join("cargo-was-called");
    let cargo = bin.join("cargo");
    std::fs::write(
        &cargo,
        format!("#!/bin/sh\necho \"$@\" > {}\nexit 1\n", called.display()),
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.path().join("target-elsewhere");
    let stub = target.join("release/portcullis");
    std::fs::create_dir_all(stub.parent().unwrap()).unwrap();
    std::fs::write(&stub, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut cmd = Command::new(bin.join("bash"));
    cmd.arg(repo.join("bench/run.sh"))
        .arg("get")
        .env_clear()
        .env("PATH", &bin)
        .env("CARGO_TARGET_DIR", &target);
    let out = common::run(&mut cmd, None, Duration::from_secs(60));
    let printed = common::combined_output(&out);
    assert!(
        !called.exists(),
        "run.sh built instead of using {}:\n{printed}",
        stub.display()
    );
    assert_eq!(out.status.code(), Some(2), "{printed}");
    assert!(printed.contains("curl not found"), "{printed}");
}
