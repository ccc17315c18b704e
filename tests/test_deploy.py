"""The deployment files hold what they promise, read the way their programs read them:
docker-compose.yml as YAML, deploy/nginx.conf with nginx's own parser (crossplane, which also
checks each directive's place and arguments), the trial certificate script by running it.
No Docker engine or nginx is needed."""

from __future__ import annotations

import ipaddress
import re
import ssl
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import crossplane
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"

Directive = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> list[Directive]:
    """The `http` block as nginx would read it: the file is included there (conf.d)."""
    main = tmp_path_factory.mktemp("nginx") / "nginx.conf"
    main.write_text(f"events {{}}\nhttp {{ include {NGINX_CONF}; }}\n")
    parsed = crossplane.parse(str(main), combine=True)
    assert parsed["status"] == "ok", parsed["errors"]
    (http,) = [d for d in parsed["config"][0]["parsed"] if d["directive"] == "http"]
    return list(http["block"])


def find(block: list[Directive], name: str) -> list[Directive]:
    return [d for d in block if d["directive"] == name]


def one(block: list[Directive], name: str) -> list[str]:
    (found,) = find(block, name)
    return list(found["args"])


def server(http: list[Directive], port: str) -> list[Directive]:
    (found,) = [s for s in find(http, "server") if any(d["args"][0] == port for d in find(s["block"], "listen"))]
    return list(found["block"])


def location(block: list[Directive], *args: str) -> list[Directive]:
    (found,) = [d for d in find(block, "location") if tuple(d["args"]) == args]
    return list(found["block"])


def mount(volume: str) -> tuple[str, str]:
    """`source:target[:ro]` → (source, target); the source may be `${VAR:-default}`."""
    source, target = volume.removesuffix(":ro").removesuffix(":rw").rsplit(":", 1)
    return source, target


def seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(s|m)?", value).groups()  # type: ignore[union-attr]
    return int(number) * (60 if unit == "m" else 1)


# --- nginx --------------------------------------------------------------------------------------


def test_nginx_serves_https_only_and_redirects_http(nginx: list[Directive], compose: dict[str, Any]) -> None:
    plain = server(nginx, "80")
    assert one(location(plain, "/"), "return") == ["301", "https://$host$request_uri"]
    secure = server(nginx, "443")
    assert all("ssl" in d["args"] for d in find(secure, "listen"))
    assert set(one(secure, "ssl_protocols")) <= {"TLSv1.2", "TLSv1.3"}
    # The certificate and key are where the compose file mounts TLS_CERT and TLS_KEY.
    mounts = {target: source for source, target in map(mount, compose["services"]["nginx"]["volumes"])}
    for directive, variable in (("ssl_certificate", "TLS_CERT"), ("ssl_certificate_key", "TLS_KEY")):
        (path,) = one(secure, directive)
        assert mounts[path].startswith(f"${{{variable}:-"), (directive, mounts)


def test_nginx_sends_hsts_on_every_https_answer_and_hides_its_version(nginx: list[Directive]) -> None:
    assert one(nginx, "server_tokens") == ["off"]
    secure = server(nginx, "443")
    (hsts,) = [d["args"] for d in find(secure, "add_header") if d["args"][0] == "Strict-Transport-Security"]
    assert int(re.search(r"max-age=(\d+)", hsts[1]).group(1)) >= 31536000 and hsts[2:] == ["always"]  # type: ignore[union-attr]
    # nginx drops a server's add_header in any location that has one of its own.
    for loc in find(secure, "location"):
        assert not find(loc["block"], "add_header"), loc["args"]


def test_nginx_limits_requests_connections_and_slow_headers(nginx: list[Directive]) -> None:
    zones = {d["args"][1].split("=")[1].split(":")[0] for d in find(nginx, "limit_req_zone")}
    (conn_zone,) = [d["args"][1].split("=")[1].split(":")[0] for d in find(nginx, "limit_conn_zone")]
    secure = server(nginx, "443")
    (general,) = find(secure, "limit_req")
    assert general["args"][0].removeprefix("zone=") in zones
    assert one(secure, "limit_conn")[0] == conn_zone
    (login,) = find(location(secure, "=", "/api/login"), "limit_req")
    assert login["args"][0].removeprefix("zone=") in zones and login["args"][0] != general["args"][0]
    assert one(nginx, "limit_req_status") == ["429"] and one(nginx, "limit_conn_status") == ["429"]
    assert seconds(one(nginx, "client_header_timeout")[0]) <= 30
    assert seconds(one(nginx, "client_body_timeout")[0]) <= 60


def test_nginx_passes_the_client_address_and_keeps_metrics_inside(
    nginx: list[Directive], compose: dict[str, Any]
) -> None:
    secure = server(nginx, "443")
    headers = {d["args"][0]: d["args"][1] for d in find(secure, "proxy_set_header")}
    # Replaced, not appended to: a client cannot put someone else's address first.
    assert headers["X-Forwarded-For"] == "$remote_addr"
    assert headers["Upgrade"] == "$http_upgrade"  # WebSocket
    assert one(location(secure, "=", "/metrics"), "return") == ["404"]
    (upstream,) = find(nginx, "upstream")
    backends = {d["args"][0].split(":")[0] for d in find(upstream["block"], "server")}
    assert backends == {name for name in compose["services"] if name.startswith("app")}


# --- docker-compose.yml -------------------------------------------------------------------------


def apps(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in compose["services"].items() if name.startswith("app")}


def test_every_instance_mounts_one_shared_blob_volume(compose: dict[str, Any]) -> None:
    assert len(apps(compose)) >= 2
    for name, spec in apps(compose).items():
        blob_dir = spec["environment"]["BLOB_DIR"]
        (volume,) = [source for source, target in map(mount, spec["volumes"]) if target == blob_dir]
        assert volume in compose["volumes"], name  # a named volume, the same for all
        assert volume == "blobs", name
    # The image creates that folder for its user, so a new volume mounted there is writable.
    assert "/var/lib/telerounds-blobs" in (ROOT / "Dockerfile").read_text()


def test_redis_and_postgres_need_passwords_and_are_not_published(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, spec in apps(compose).items():
        assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379/0", spec["environment"]["REDIS_URL"])
        assert "${POSTGRES_PASSWORD" in spec["environment"]["DATABASE_URL"], name
    command = services["redis"]["command"]
    assert command[command.index("--requirepass") + 1] == "${REDIS_PASSWORD}"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD}"
    # Only nginx publishes ports (coturn uses the host's network for its relay ports).
    assert [name for name, spec in services.items() if "ports" in spec] == ["nginx"]
    assert services["coturn"]["network_mode"] == "host"
    for name in ("redis", "postgres"):
        assert services[name]["networks"] == ["backend"], name
    assert compose["networks"]["backend"]["internal"] is True


def test_services_wait_for_their_dependencies_to_be_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, spec in services.items():
        for dependency, condition in spec.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            depended = services[dependency]
            # A health check of its own, or the image's (the instances': HEALTHCHECK on /readyz).
            assert "healthcheck" in depended or (depended.get("build") == "." and "HEALTHCHECK" in dockerfile)
    assert set(services["nginx"]["depends_on"]) == set(apps(compose))
    assert set(services["app1"]["depends_on"]) == {"redis", "postgres"}


def test_instances_trust_x_forwarded_for_only_from_nginxs_network(compose: dict[str, Any]) -> None:
    (subnet,) = [c["subnet"] for c in compose["networks"]["edge"]["ipam"]["config"]]
    nginx = compose["services"]["nginx"]
    assert ipaddress.ip_address(nginx["networks"]["edge"]["ipv4_address"]) in ipaddress.ip_network(subnet)
    for name, spec in apps(compose).items():
        assert spec["environment"]["TRUSTED_PROXIES"] == subnet, name


def test_turn_points_at_the_public_host_and_relays_to_no_private_address(compose: dict[str, Any]) -> None:
    for name, spec in apps(compose).items():
        for variable in ("TURN_URLS", "STUN_URLS"):
            urls = spec["environment"][variable].split(",")
            assert urls and all("${PUBLIC_HOST" in url for url in urls), (name, variable)
            assert not any(word in url for url in urls for word in ("localhost", "127.0.0.1", "[::1]"))
    command = compose["services"]["coturn"]["command"]
    denied = []
    for arg in command:
        if arg.startswith("--denied-peer-ip="):
            low, _, high = arg.split("=", 1)[1].partition("-")
            denied.append((ipaddress.ip_address(low), ipaddress.ip_address(high or low)))
    for network in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    ):
        net = ipaddress.ip_network(network)
        assert any(
            low.version == net.version and low <= net[0] and net[-1] <= high  # type: ignore[operator]
            for low, high in denied
        ), network
    assert "--static-auth-secret=${TURN_SECRET}" in command and "--use-auth-secret" in command


def test_the_trial_certificate_script_makes_a_pair_nginx_can_use(tmp_path: Path) -> None:
    script = ROOT / "deploy" / "make-trial-cert.sh"
    result = subprocess.run(
        [str(script), "telerounds.benhvien.example", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)  # the key belongs to the certificate
    assert key.stat().st_mode & 0o077 == 0  # the key is its owner's only
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["telerounds.benhvien.example"]
    refused = subprocess.run([str(script), "bad host;rm"], capture_output=True, text=True, check=False)
    assert refused.returncode == 2 and "HOST must be" in refused.stderr


# --- licence --------------------------------------------------------------------------------------


def test_the_project_is_apache_2_licensed() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and "Grant of Patent License" in text
