"""The CSV options of a dataset upload: only character encodings, only usable delimiters."""

import io
import zlib
from urllib.parse import urlencode

import pytest
from django.test import Client

from accounts.models import Role
from datasets.models import DatasetVersion
from tests.datasets.test_datasets import error_of, stored_files

CSV = b"name,city\nAda,London\nGrace,Arlington\n"


def upload(client, slug, data: bytes, **params):
    return client.generic("POST", f"/api/v1/projects/{slug}/datasets/people/versions/?{urlencode(params)}",
                          data, content_type="application/octet-stream", CONTENT_LENGTH=str(len(data)))


def assert_refused(response, field: str, artifact_root):
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert list(error["fields"]) == [field], error
    assert DatasetVersion.objects.count() == 0
    assert stored_files(artifact_root) == []
    return error["fields"][field]


@pytest.mark.parametrize("encoding", ["zlib", "zlib_codec", "bz2", "base64", "hex", "uu", "rot13", "rot_13",
                                      "idna", "punycode", "quopri", "unicode_escape", "raw_unicode_escape",
                                      "undefined", "no-such-codec", "utf\x00-8", "x" * 41])
def test_an_encoding_that_is_not_a_character_set_is_refused(editor, project, artifact_root, encoding):
    message = assert_refused(upload(editor, project.slug, CSV, encoding=encoding), "encoding", artifact_root)
    # A NUL in any query parameter is refused before the view, naming the parameter.
    assert ("NUL character" if "\x00" in encoding else "character encoding") in message


def test_a_zlib_bomb_is_refused_before_it_is_inflated_or_stored(editor, project, artifact_root):
    # 64 MB of CSV in some 64 kB: decoded with encoding=zlib it would inflate inside the request.
    bomb = zlib.compress(b"a,b\n" + b"1,2\n" * (16 * 1024 * 1024), 9)
    assert len(bomb) < 100_000
    message = assert_refused(upload(editor, project.slug, bomb, encoding="zlib"), "encoding", artifact_root)
    assert "'zlib' is not a character encoding" in message


@pytest.mark.parametrize(("encoding", "data"), [
    ("latin-1", "name,city\nZoë,Genève\n".encode("latin-1")),
    ("cp1252", "name,city\nZoë,€\n".encode("cp1252")),
    ("utf-8-sig", "name,city\nZoë,Genève\n".encode("utf-8-sig")),
    ("UTF8", "name,city\nZoë,Genève\n".encode()),
])
def test_character_encodings_are_read(editor, project, encoding, data):
    response = upload(editor, project.slug, data, encoding=encoding)
    assert response.status_code == 201, response.content
    preview = editor.get(f"/api/v1/dataset-versions/{response.json()['id']}/preview/").json()
    assert preview["rows"][0][0] == "Zoë"


@pytest.mark.parametrize("delimiter", ["é", "\x00", "", ",,", "\n", "\r", '"', "\x7f", "→", "\u00a0"])
def test_an_unusable_delimiter_is_refused(editor, project, artifact_root, delimiter):
    response = upload(editor, project.slug, CSV, delimiter=delimiter)
    message = assert_refused(response, "delimiter", artifact_root)
    assert ("NUL character" if delimiter == "\x00" else "one ASCII character") in message


@pytest.mark.parametrize("delimiter", ["é", "→", "§"])
def test_a_file_delimited_by_a_non_ascii_character_is_refused_naming_the_delimiter(
    editor, project, artifact_root, delimiter
):
    # The header holds the delimiter, so the upload reaches the CSV reader, which takes only ASCII.
    data = f"name{delimiter}city\nAda{delimiter}London\n".encode()
    assert_refused(upload(editor, project.slug, data, delimiter=delimiter), "delimiter", artifact_root)
    response = editor.post(f"/api/v1/projects/{project.slug}/datasets/",
                           {"name": "people", "file": io.BytesIO(data), "delimiter": delimiter},
                           format="multipart")
    assert_refused(response, "delimiter", artifact_root)


@pytest.mark.parametrize(("delimiter", "data"), [
    ("\t", b"name\tcity\nAda\tLondon\n"), ("|", b"name|city\nAda|London\n"),
    (" ", b"name city\nAda London\n"), (";", b"name;city\nAda;London\n"),
])
def test_ascii_delimiters_are_used(editor, project, delimiter, data):
    response = upload(editor, project.slug, data, delimiter=delimiter)
    assert response.status_code == 201, response.content
    assert response.json()["read_options"]["delimiter"] == delimiter
    assert [c["name"] for c in response.json()["columns"]] == ["name", "city"]


def test_the_upload_page_names_a_bad_delimiter_or_encoding(member_client, project, artifact_root):
    browser = Client()
    browser.force_login(member_client(Role.EDITOR).user)
    response = browser.post(f"/p/{project.slug}/datasets/",
                            {"name": "people", "file": io.BytesIO(CSV), "delimiter": "é", "encoding": ""})
    assert response.status_code == 200
    assert "delimiter" in response.content.decode() and "one ASCII character" in response.content.decode()
    assert DatasetVersion.objects.count() == 0
    response = browser.post(f"/p/{project.slug}/datasets/",
                            {"name": "people", "file": io.BytesIO(CSV), "delimiter": "",
                             "encoding": "base64"})
    assert response.status_code == 200 and "not a character encoding" in response.content.decode()
    assert DatasetVersion.objects.count() == 0


def test_an_unnamed_delimiter_is_sniffed_reading_quotes(editor, project):
    # Commas inside quoted fields of a semicolon file: counting characters would choose the comma.
    data = b'id;"note, with, commas"\n1;"a, b, c"\n2;"d, e, f"\n'
    response = upload(editor, project.slug, data)
    assert response.status_code == 201, response.content
    assert response.json()["read_options"]["delimiter"] == ";"
    assert [c["name"] for c in response.json()["columns"]] == ["id", "note, with, commas"]
