"""Security helpers of the web page (UnetGANSlicerWeb.paths), without a browser or a server.

Uploads: type and size limits, names reduced to a safe base name. Output: a
sub-folder of the output folder only (no '..', no absolute path, no symbolic link
leading out), plain file names. Server paths: must exist, readable types only,
inside the data root when one is set. Binding: a warning for non-loopback hosts.
"""
from __future__ import annotations

import argparse
import os

import pytest

from UnetGANSlicerWeb import paths  # noqa: E402 - a project module: missing, the suite fails
PathRejected, UploadRejected = paths.PathRejected, paths.UploadRejected
MB = 2**20


# ---------------------------------------------------------------- uploads

@pytest.mark.parametrize("name, expected", [
    ("case.nii.gz", "case.nii.gz"),
    ("case.NII.GZ", "case.nii.gz"),
    ("scan.nii", "scan.nii"),
    ("cine 4d.nrrd", "cine_4d.nrrd"),
    ("volume.mha", "volume.mha"),
    ("../../etc/x.nrrd", "x.nrrd"),
    ("C:\\Users\\me\\cine.nii.gz", "cine.nii.gz"),
    (".hidden.nrrd", "hidden.nrrd"),
    ("é€.mha", "upload.mha"),
])
def test_upload_names_are_reduced_to_safe_base_names(name, expected):
    assert paths.check_upload(name, 1000) == expected


@pytest.mark.parametrize("name", ["notes.txt", "image.png", "series.dcm", "archive.zip", "cine.nii.gz.exe",
                                  "x.gz", ".nrrd", "nrrd", "case.seg", ""])
def test_upload_of_other_types_is_rejected_with_a_message(name):
    with pytest.raises(UploadRejected) as err:
        paths.check_upload(name, 1000)
    assert str(err.value)  # a message for the page


def test_upload_size_limits():
    assert paths.MAX_UPLOAD_BYTES == 512 * MB
    assert paths.check_upload("a.nrrd", 512 * MB) == "a.nrrd"
    with pytest.raises(UploadRejected, match="limit is 512 MB"):
        paths.check_upload("a.nrrd", 512 * MB + 1)
    with pytest.raises(UploadRejected, match="limit is 10 MB"):
        paths.check_upload("a.nrrd", 11 * MB, max_bytes=10 * MB)
    with pytest.raises(UploadRejected, match="empty"):
        paths.check_upload("a.nrrd", 0)
    for size in (None, -1, "12"):
        with pytest.raises(UploadRejected):
            paths.check_upload("a.nrrd", size)


# ---------------------------------------------------------------- output folder

@pytest.fixture
def root(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    return out


def test_output_folder_inside_root(root):
    assert paths.resolve_output_folder(root, "") == root.resolve()
    assert paths.resolve_output_folder(root, ".") == root.resolve()
    made = paths.resolve_output_folder(root, "patient 1/run-2", create=True)
    assert made == (root / "patient 1" / "run-2").resolve() and made.is_dir()
    assert paths.resolve_output_folder(root, "patient 1\\run-2") == made  # Windows separators too


@pytest.mark.parametrize("relative", ["..", "../x", "a/../../x", "a/..", "/tmp", "/etc/passwd", "~", "~/x",
                                      "C:\\x", "\\\\server\\share", "a/\x00b", "a/.hidden", "a/b:c"])
def test_output_folder_escapes_are_rejected(root, relative):
    with pytest.raises(PathRejected):
        paths.resolve_output_folder(root, relative, create=True)
    assert sorted(p.name for p in root.parent.iterdir()) == ["out"]  # nothing made anywhere


def test_symbolic_link_out_of_the_output_folder_is_rejected(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathRejected, match="outside"):
        paths.resolve_output_folder(root, "link")
    with pytest.raises(PathRejected, match="outside"):
        paths.resolve_output_folder(root, "link/sub", create=True)
    assert not (outside / "sub").exists()
    with pytest.raises(PathRejected):
        paths.check_inside(root / "link" / "case.seg.nrrd", root)
    # a link that stays inside is fine
    (root / "inner").mkdir()
    (root / "alias").symlink_to(root / "inner", target_is_directory=True)
    assert paths.resolve_output_folder(root, "alias") == (root / "inner").resolve()


def test_output_root_itself_may_be_a_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert paths.resolve_output_folder(link, "a", create=True) == real / "a"


def test_check_inside(root):
    assert paths.check_inside(root / "case.seg.nrrd", root) == root.resolve() / "case.seg.nrrd"
    sub = paths.resolve_output_folder(root, "s", create=True)
    assert paths.check_inside(sub / "frames" / "f.seg.nrrd", root) == sub / "frames" / "f.seg.nrrd"
    with pytest.raises(PathRejected):
        paths.check_inside(root.parent / "case.seg.nrrd", root)
    with pytest.raises(PathRejected):
        paths.check_inside(root / ".." / "case.seg.nrrd", root)


def test_files_that_are_links_are_never_written_through(root, tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("keep")
    (root / "case.seg.nrrd").symlink_to(target)
    (root / "dangling.csv").symlink_to(tmp_path / "nothing-yet.csv")
    (root / "inner.csv").symlink_to(root / "real.csv")
    for name in ("case.seg.nrrd", "dangling.csv", "inner.csv"):
        with pytest.raises(PathRejected, match="symbolic link"):
            paths.check_inside(root / name, root)
    assert target.read_text() == "keep"


@pytest.mark.parametrize("name", ["case", "patient 1", "a.b", "x_(2)", "cine+seg"])
def test_file_names_accepted(name):
    assert paths.check_file_name(name) == name


@pytest.mark.parametrize("name", ["", " ", ".", "..", "a..b", ".hidden", "a/b", "a\\b", "a\x00", "-rf", "a:b",
                                  "x" * 200, "a*", "a?"])
def test_file_names_rejected(name):
    with pytest.raises(PathRejected):
        paths.check_file_name(name)


# ---------------------------------------------------------------- server paths

def test_server_paths(tmp_path):
    data = tmp_path / "data"
    (data / "dicom").mkdir(parents=True)
    image = data / "cine.nii.gz"
    image.write_bytes(b"x")
    (data / "notes.txt").write_text("x")
    assert paths.check_server_path(str(data / "dicom")) == (data / "dicom").resolve()
    assert paths.check_server_path(str(image), data_root=data) == image.resolve()
    with pytest.raises(PathRejected, match="absolute"):
        paths.check_server_path("data/cine.nii.gz")
    with pytest.raises(PathRejected, match="does not exist"):
        paths.check_server_path(str(data / "missing"))
    with pytest.raises(PathRejected, match="not an image type"):
        paths.check_server_path(str(data / "notes.txt"))
    with pytest.raises(PathRejected, match="outside the data folder"):
        paths.check_server_path(str(tmp_path), data_root=data)
    with pytest.raises(PathRejected, match="outside the data folder"):
        paths.check_server_path(str(data / ".." / "data" / ".." / "x"), data_root=data)
    (data / "escape").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(PathRejected, match="outside the data folder"):
        paths.check_server_path(str(data / "escape"), data_root=data)
    with pytest.raises(PathRejected):
        paths.check_server_path("")


# ---------------------------------------------------------------- binding

@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"])
def test_loopback_hosts_give_no_warning(host):
    assert paths.is_loopback(host)
    assert paths.exposure_warning(host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org", ""])
def test_other_hosts_give_a_warning(host):
    warning = paths.exposure_warning(host)
    assert warning is not None and warning.startswith("WARNING") and "127.0.0.1" in warning


def test_cli_warns_on_stderr_for_other_addresses(monkeypatch, capsys, tmp_path):
    """The warning is printed before anything starts (the server start itself is stubbed)."""
    from UnetGANSlicerWeb import cli
    started = []

    class FakeApp:
        def __init__(self, options):
            self.options = options

        def start(self):
            started.append(self.options)

    import UnetGANSlicerWeb.app as app_module

    monkeypatch.setattr(app_module, "WebApp", FakeApp)
    monkeypatch.setattr(cli.os, "environ", dict(os.environ))  # the CLI may set VTK_DEFAULT_OPENGL_WINDOW
    assert cli.main(["--single-session", "--host", "0.0.0.0", "--port", "0", "--token",
                     "--output-dir", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "WARNING: serving on 0.0.0.0" in err
    assert started and started[0].host == "0.0.0.0" and started[0].output_dir == (tmp_path / "o").resolve()
    assert started[0].sign_in.required and len(started[0].sign_in.token) >= 32  # a random token, printed
    assert cli.main(["--single-session", "--output-dir", str(tmp_path / "o")]) == 0
    assert "WARNING" not in capsys.readouterr().err
    assert started[-1].host == "127.0.0.1"


def test_upload_limit_option(monkeypatch, tmp_path):
    from UnetGANSlicerWeb import cli
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["web", "--max-upload-mb", "20", "--output-dir", str(tmp_path), "case.nii.gz"])
    options = cli.options_from_args(args)
    assert options.max_upload_bytes == 20 * MB and options.input == "case.nii.gz"
    with pytest.raises(SystemExit):
        parser.parse_args(["web", "--max-upload-mb", "0"])


# ---------------------------------------------------------------- sign-in

def test_non_loopback_needs_a_token_or_password(tmp_path):
    from UnetGANSlicerWeb import auth

    with pytest.raises(auth.SignInError, match="refusing to serve beyond 127.0.0.1 without sign-in"):
        auth.SignIn.from_options(False, environ={})
    assert auth.SignIn.from_options(False, token="t", environ={}).required
    secret = tmp_path / "password.txt"
    secret.write_text("correct horse\n")
    assert auth.SignIn.from_options(False, password_file=secret, environ={}).password == "correct horse"
    assert auth.SignIn.from_options(False, environ={auth.PASSWORD_ENV: "p"}).password == "p"
    assert not auth.SignIn.from_options(True, environ={}).required  # loopback: as before, unless asked
    (tmp_path / "empty").write_text("")
    with pytest.raises(auth.SignInError, match="is empty"):
        auth.SignIn.from_options(False, password_file=tmp_path / "empty", environ={})


def test_cli_refuses_0000_without_sign_in_in_one_line(monkeypatch, capsys, tmp_path):
    from UnetGANSlicerWeb import auth, cli

    for name in (auth.TOKEN_ENV, auth.PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["--host", "0.0.0.0", "--output-dir", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ERROR: refusing to serve beyond 127.0.0.1")
    assert not (tmp_path / "o").exists()


def _requests(sign_in, requests):
    """(status, body, cookie) for each (method, path, form) against a tiny app behind the sign-in."""
    import asyncio

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    async def page(_request):
        return web.Response(text="<title>UnetGANSlicer</title>", content_type="text/html")

    async def go():
        app = web.Application()
        sign_in.protect(app)
        app.router.add_get("/", page)
        app.router.add_post("/ug-upload", page)
        async with TestClient(TestServer(app)) as client:
            answers = []
            for method, path, form in requests:
                response = await client.request(method, path, data=form, allow_redirects=True)
                answers.append((response.status, await response.text()))
            return answers

    return asyncio.run(go())


def test_token_gets_a_cookie_and_a_wrong_one_gets_nothing(monkeypatch):
    import hmac

    from UnetGANSlicerWeb import auth

    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    sign_in = auth.SignIn(token="right-token")
    answers = _requests(sign_in, [("GET", "/", None), ("GET", "/?token=wrong", None), ("POST", "/ug-upload", b"x"),
                                  ("GET", "/?token=right-token", None), ("GET", "/", None)])
    for status, body in answers[:3]:
        assert status == 403 and "UnetGANSlicer" not in body and body == auth.FORBIDDEN
    assert answers[3] == (200, "<title>UnetGANSlicer</title>") and answers[4][0] == 200  # the cookie now
    assert compared  # constant-time comparisons


def test_password_form(monkeypatch):
    from UnetGANSlicerWeb import auth

    monkeypatch.setattr(auth, "WRONG_PASSWORD_DELAY_S", 0.0)
    answers = _requests(auth.SignIn(password="pw"), [
        ("GET", "/", None), ("POST", auth.LOGIN_PATH, {"password": "nope"}),
        ("POST", auth.LOGIN_PATH, {"password": "pw"}), ("GET", "/", None)])
    assert answers[0][0] == 401 and "password" in answers[0][1] and "UnetGANSlicer" not in answers[0][1]
    assert answers[1][0] == 403 and "Wrong password" in answers[1][1]
    assert answers[2][0] == 200 and "UnetGANSlicer" in answers[2][1] and answers[3][0] == 200


@pytest.mark.parametrize("token", [None, "t"])
def test_session_processes_ask_for_the_cookie_only_when_the_launcher_does(monkeypatch, token):
    """The launcher hands its cookie secret down only with sign-in; a session then requires exactly that cookie."""
    from UnetGANSlicerWeb import auth, cli, launcher

    environ = {auth.COOKIE_ENV: "stale"}
    signed = auth.SignIn(token=token)
    launcher.hand_down_sign_in(signed, environ)
    monkeypatch.setattr(cli.os, "environ", environ)
    session = cli._sign_in(argparse.Namespace(session_id="abc", host="127.0.0.1"))
    assert session.required == bool(token)
    if token:
        assert session.cookie_secret == signed.cookie_secret


def test_a_tab_beyond_the_session_limit_is_told_what_happened(tmp_path):
    """The launcher's page, once every session port is taken, says so (the trame client alone would show only
    "try/catch on connect()"), and the session endpoint's refusal says the same."""
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from UnetGANSlicerWeb import auth, launcher

    content = tmp_path / "www"
    content.mkdir()
    (content / "index.html").write_text("<title>the page</title>")
    config = launcher.launcher_config("127.0.0.1", 1, (2, 2), content, tmp_path, ["true"])
    app = launcher.build_launcher_app(config, auth.SignIn())

    async def go():
        async with TestClient(TestServer(app)) as client:
            answers = [await client.get("/", allow_redirects=True)]
            app["launcher"].session_manager.createSession({"application": launcher.APPLICATION})  # the one port
            answers.append(await client.get("/", allow_redirects=True))
            answers.append(await client.post(launcher.ENDPOINT, json={"application": "trame"}))
            return [(answer.status, await answer.text()) for answer in answers]

    (free, free_text), (full, full_text), (refused, refused_text) = asyncio.run(go())
    assert free == 200 and free_text == "<title>the page</title>"
    assert full == 503 and "<title>the page</title>" not in full_text
    assert "all the sessions this server allows (1) are in use" in full_text
    assert "Nothing of yours was lost" in full_text
    assert refused == 503 and "all the sessions this server allows (1) are in use" in refused_text


def test_the_printed_link_names_a_host_a_browser_can_open():
    """Serving on every interface, the link names this machine (its address or name), never 0.0.0.0 or ::."""
    import ipaddress
    import socket

    from UnetGANSlicerWeb.paths import reachable_host

    for wildcard in ("0.0.0.0", "::"):
        shown = reachable_host(wildcard)
        assert shown not in ("0.0.0.0", "::", "[::]", "") and not shown.startswith("127."), shown
        assert shown == socket.gethostname() or ipaddress.ip_address(shown.strip("[]"))
    assert reachable_host("192.168.1.20") == "192.168.1.20" and reachable_host("127.0.0.1") == "127.0.0.1"


def test_the_adapter_given_at_start_is_selected_from_the_list(monkeypatch, tmp_path):
    """`--adapter Siemens` selects the shipped Siemens entry (not a second "Siemens"); nothing selects
    Automatic; a file not in the list is added to it."""
    import json

    from UnetGANSlicerWeb import adapters

    registry = tmp_path / "models.json"
    registry.write_text(json.dumps({"models": [
        {"name": "adapter-x-siemens", "kind": "adapter", "target_vendor": "Siemens", "source_vendor": "Philips",
         "file": "missing.safetensors", "sha256": None}]}))
    monkeypatch.setenv("UNETGAN_REGISTRY", str(registry))
    monkeypatch.setenv("UNETGAN_USER_REGISTRY", str(tmp_path / "no-user-models.json"))
    assert [item["title"] for item in adapters.adapter_items("siemens")] == [
        "Automatic", "Siemens - file missing", "None"]
    assert adapters.selected_at_start("siemens") == "adapter-x-siemens"
    assert adapters.selected_at_start(None) == adapters.AUTOMATIC
    mine = str(tmp_path / "mine.safetensors")
    assert adapters.selected_at_start(mine) == mine
    assert adapters.adapter_items(mine)[1] == {"title": "mine.safetensors (file)", "value": mine,
                                               "subtitle": "given on the command line"}
    assert adapters.translated_title("Siemens") == "Translated to the Philips look"
    assert adapters.translated_title(None) == "No adapter: the image as it is"
