# Shared by the bench scripts (source it): small helpers, no side effects.

# quiet_config ROOT: the part of a config.yml every benchmark server shares,
# quiet logs and filesystem storage under ROOT; the caller appends `http:`.
quiet_config() {
    cat <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $1
YAML
}
