"""Webhook URLs may not reach loopback, private or link-local addresses, directly or by name."""

import socket

import pytest

from core import webhooks


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.0.0.5/x",
        "http://192.168.1.1/x",
        "http://172.16.0.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
        "http://localhost/x",
        "http://100.64.0.1/x",
    ],
)
def test_internal_addresses_are_refused(url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(webhooks.WebhookRefused):
        webhooks.webhook_url_check(url)


def test_a_name_that_resolves_to_a_private_address_is_refused(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False

    def resolve(host, port, *args, **kwargs):
        assert host == "hooks.example.com"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(webhooks.WebhookRefused, match="10.20.30.40"):
        webhooks.webhook_url_check("https://hooks.example.com/steward")


def test_a_public_address_passes_and_other_schemes_do_not(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    webhooks.webhook_url_check("http://93.184.215.14/hook")
    for url in ("file:///etc/passwd", "gopher://93.184.215.14/", "http:///nohost"):
        with pytest.raises(webhooks.WebhookRefused):
            webhooks.webhook_url_check(url)


def test_the_connected_socket_is_checked_too(settings, monkeypatch):
    """A name that passes the check but connects to a loopback address (DNS rebinding)."""
    import http.server
    import threading

    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.WEBHOOK_ALLOW_PRIVATE = False
        # The up-front check sees a public address; the connection then goes to 127.0.0.1.
        monkeypatch.setattr(webhooks, "webhook_url_check", lambda url: None)
        status = webhooks.webhook_send(
            url=f"http://127.0.0.1:{server.server_port}/x", secret="s", event="test", payload={}
        )
        assert status is None and hits == []
        settings.WEBHOOK_ALLOW_PRIVATE = True
        status = webhooks.webhook_send(
            url=f"http://127.0.0.1:{server.server_port}/x", secret="s", event="test", payload={}
        )
        assert status == 200 and hits == ["/x"]
    finally:
        server.shutdown()
