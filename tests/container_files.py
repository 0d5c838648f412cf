#!/usr/bin/env python3
"""container_files.py SOURCE_DIR OUT_DIR - checks that ward's container files
agree with each other and with ward (docs/containers.md), for
tests/test_container.c:

- contrib/docker/Dockerfile: a build stage, then debian:12-slim; the
  ENTRYPOINT `ward run -c /etc/ward` and WARD_CONFIG_DIR the same; a numeric non-root USER; the VOLUME
  at the image configuration's state_dir; the plugins copied from where
  CMake installs them with the Dockerfile's flags, which is the
  configuration's plugin_dir; every COPY source exists; a HEALTHCHECK on
  `ward status`; STOPSIGNAL SIGTERM; EXPOSE the port of `http`.
- contrib/k8s/ward.yaml (parsed with PyYAML): the ConfigMap mounted at the
  ENTRYPOINT's -c directory; httpGet liveness on /healthz and readiness on
  /readyz at the port of the ConfigMap's `http`; runAsNonRoot with the
  image's uid, readOnlyRootFilesystem; a volume (emptyDir or PVC) at
  state_dir; terminationGracePeriodSeconds above stop_timeout + 5 s;
  log_output = stdout.

It writes OUT_DIR/image/ward.ini (the image's configuration) and
OUT_DIR/configmap/ (the ConfigMap as the kubelet lays it out: ..data
symlinks), for the C test to run `ward check` on. Prints each problem;
exit 1 if there is any.
"""
import configparser
import json
import os
import re
import shlex
import sys

import yaml

problems = []


def check(ok, what):
    if not ok:
        problems.append(what)
    return ok


def read_ini(text, where):
    """ward's INI as configparser reads it (';' comments, no interpolation)."""
    ini = configparser.ConfigParser(interpolation=None, strict=False, comment_prefixes=(";", "#"))
    ini.optionxform = str
    try:
        ini.read_string(text, source=where)
    except configparser.Error as e:
        problems.append(f"{where}: not INI: {e}")
    return ini


def seconds(duration):
    """A ward duration (250ms, 5s, 2m, 1h, bare seconds) in seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", duration.strip())
    if not m:
        problems.append(f"not a duration: {duration!r}")
        return 0
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def http_port(ini, where):
    addr = ini.get("ward", "http", fallback="")
    check(addr.startswith("0.0.0.0:"), f"{where}: http = {addr!r}: probes come from outside the container, "
          "so it must listen on 0.0.0.0")
    return int(addr.rsplit(":", 1)[1]) if ":" in addr else 0


def dockerfile(src):
    """The Dockerfile's instructions as (keyword, argument) pairs, continuations joined."""
    text = open(os.path.join(src, "contrib/docker/Dockerfile")).read()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def check_image(src, steps):
    """Checks the Dockerfile; returns what the Kubernetes file must match."""
    froms = [arg for kw, arg in steps if kw == "FROM"]
    check(len(froms) == 2 and froms[0].startswith("debian:12 ") and froms[1] == "debian:12-slim",
          f"Dockerfile: want a debian:12 build stage, then debian:12-slim: {froms}")
    runtime = steps[max(i for i, (kw, _) in enumerate(steps) if kw == "FROM"):]
    last = {kw: arg for kw, arg in runtime}
    entry = json.loads(last.get("ENTRYPOINT", "[]"))
    check(entry[:3] == ["ward", "run", "-c"] and len(entry) == 4,
          f"Dockerfile: ENTRYPOINT {entry}: want [\"ward\", \"run\", \"-c\", DIR]")
    conf_dir = entry[3] if len(entry) == 4 else ""
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(arg for kw, arg in runtime if kw == "ENV")))
    check(env.get("WARD_CONFIG_DIR") == conf_dir,
          f"Dockerfile: ENV WARD_CONFIG_DIR={env.get('WARD_CONFIG_DIR')}: want the ENTRYPOINT's {conf_dir}, "
          "so that `docker exec ... ward status` finds it")
    user = last.get("USER", "0").split(":")
    check(user[0].isdigit() and int(user[0]) != 0,
          f"Dockerfile: USER {last.get('USER')}: want a numeric uid other than 0 (runAsNonRoot checks it)")
    uid = int(user[0]) if user[0].isdigit() else 0
    check(last.get("STOPSIGNAL") == "SIGTERM", "Dockerfile: want STOPSIGNAL SIGTERM")
    check("ward status" in last.get("HEALTHCHECK", ""), "Dockerfile: want a HEALTHCHECK running `ward status`")
    # What CMake installs where, with the flags the build stage passes.
    build = " ".join(arg for kw, arg in steps if kw == "RUN" and "cmake" in arg)
    flags = dict(re.findall(r"-D(CMAKE_INSTALL_PREFIX|CMAKE_INSTALL_LIBDIR)=(\S+)", build))
    cmake = open(os.path.join(src, "CMakeLists.txt")).read()
    check("LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/ward/plugins" in cmake,
          "CMakeLists.txt no longer installs plugins in ${CMAKE_INSTALL_LIBDIR}/ward/plugins: update the Dockerfile")
    plugins = f"{flags.get('CMAKE_INSTALL_PREFIX', '?')}/{flags.get('CMAKE_INSTALL_LIBDIR', '?')}/ward/plugins"
    copies = [shlex.split(arg) for kw, arg in runtime if kw == "COPY"]
    image_ini = None
    for c in copies:
        if c[0].startswith("--from="):
            check(c[1].startswith("/out/"), f"Dockerfile: COPY {c}: the build stage installs into /out")
            if "plugins" in c[1]:
                check(c[1].rstrip("/") == "/out" + plugins and c[2].rstrip("/") == plugins,
                      f"Dockerfile: COPY {c}: CMake installs the plugins in /out{plugins}")
        else:
            check(os.path.exists(os.path.join(src, c[0])), f"Dockerfile: COPY {c[0]}: no such file in the checkout")
            if c[1].startswith(conf_dir + "/") and c[1].endswith(".ini"):
                image_ini = c[0]
    check(image_ini is not None, f"Dockerfile: no configuration copied into {conf_dir}/")
    ini = read_ini(open(os.path.join(src, image_ini or "contrib/docker/ward.ini")).read(), "contrib/docker/ward.ini")
    state_dir = ini.get("ward", "state_dir", fallback="")
    volumes = json.loads(last.get("VOLUME", "[]"))
    check(volumes == [state_dir], f"Dockerfile: VOLUME {volumes}: want state_dir [{state_dir!r}]")
    check(ini.get("ward", "plugin_dir", fallback="") == plugins,
          f"contrib/docker/ward.ini: plugin_dir is not {plugins}, where the image has its plugins")
    port = http_port(ini, "contrib/docker/ward.ini")
    check(last.get("EXPOSE") == str(port), f"Dockerfile: EXPOSE {last.get('EXPOSE')}: http is on port {port}")
    return {"conf_dir": conf_dir, "uid": uid, "plugins": plugins, "ini": open(os.path.join(src, image_ini)).read()}


def check_k8s(src, image):
    docs = list(yaml.safe_load_all(open(os.path.join(src, "contrib/k8s/ward.yaml"))))
    kinds = {d["kind"]: d for d in docs if d}
    if not check("ConfigMap" in kinds and "Deployment" in kinds, f"ward.yaml: want a ConfigMap and a Deployment: {list(kinds)}"):
        return {}
    cm = kinds["ConfigMap"]
    files = cm.get("data", {})
    check(files and all(name.endswith(".ini") for name in files), f"ward.yaml: ConfigMap files {list(files)}: ward reads *.ini")
    ini = read_ini("\n".join(files[n] for n in sorted(files)), "ward.yaml ConfigMap")
    check(ini.get("ward", "log_output", fallback="file") == "stdout", "ward.yaml: ConfigMap: want log_output = stdout")
    check(ini.get("ward", "plugin_dir", fallback="") == image["plugins"],
          f"ward.yaml: ConfigMap: plugin_dir is not {image['plugins']}, where the image has its plugins")
    state_dir = ini.get("ward", "state_dir", fallback="")
    port = http_port(ini, "ward.yaml ConfigMap")
    stop = seconds(ini.get("defaults", "stop_timeout", fallback="10s"))

    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    check(port in ports.values(), f"ward.yaml: containerPort {list(ports.values())}: http is on {port}")

    def probe(kind, path):
        get = c.get(kind, {}).get("httpGet", {})
        p = get.get("port")
        check(get.get("path") == path and (p == port or ports.get(p) == port),
              f"ward.yaml: {kind}: want httpGet {path} on port {port}: {get}")

    probe("livenessProbe", "/healthz")
    probe("readinessProbe", "/readyz")
    sec = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
    check(sec.get("runAsNonRoot") is True, "ward.yaml: want runAsNonRoot: true")
    check(sec.get("runAsUser") == image["uid"], f"ward.yaml: runAsUser {sec.get('runAsUser')}: the image's USER is {image['uid']}")
    check(sec.get("readOnlyRootFilesystem") is True, "ward.yaml: want readOnlyRootFilesystem: true")
    check(sec.get("allowPrivilegeEscalation") is False, "ward.yaml: want allowPrivilegeEscalation: false")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace > stop + 5, f"ward.yaml: terminationGracePeriodSeconds {grace}: ward needs stop_timeout ({stop:g}s) "
          "+ 5s for a process SIGKILL cannot end, and a margin")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in c.get("volumeMounts", [])}
    conf = volumes.get(mounts.get(image["conf_dir"]), {})
    check(conf.get("configMap", {}).get("name") == cm["metadata"]["name"],
          f"ward.yaml: the ConfigMap is not mounted at {image['conf_dir']}, the image's ward run -c")
    state = volumes.get(mounts.get(state_dir), {})
    check("emptyDir" in state or "persistentVolumeClaim" in state,
          f"ward.yaml: no emptyDir or persistentVolumeClaim mounted at state_dir {state_dir}")
    return files


def lay_out(out, image, files):
    """What `ward check` runs on: the image's conf.d, and the ConfigMap as the kubelet mounts it."""
    os.makedirs(os.path.join(out, "image"))
    with open(os.path.join(out, "image", "ward.ini"), "w") as f:
        f.write(image["ini"])
    data = os.path.join(out, "configmap", "..2026_01_01_00_00_00.000000000")
    os.makedirs(data)
    for name, text in files.items():
        with open(os.path.join(data, name), "w") as f:
            f.write(text)
        os.symlink(os.path.join("..data", name), os.path.join(out, "configmap", name))
    os.symlink(os.path.basename(data), os.path.join(out, "configmap", "..data"))


def main():
    src, out = sys.argv[1], sys.argv[2]
    image = check_image(src, dockerfile(src))
    files = check_k8s(src, image)
    if not problems:
        lay_out(out, image, files)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
