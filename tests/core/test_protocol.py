"""The wire protocol core, without sockets."""

import msgpack
import pytest

from server.core import protocol
from server.core.protocol import Code, ProtocolError, decode


def frame(**fields):
    return msgpack.packb(fields)


@pytest.mark.parametrize(
    "data, code",
    [
        (b"\xc1\xc1\xc1", Code.MALFORMED),  # 0xc1 is never valid msgpack
        (b"\x92\x01", Code.MALFORMED),  # truncated array
        ("a text frame", Code.MALFORMED),
        (msgpack.packb([1, 2, 3]), Code.NOT_A_MAP),
        (msgpack.packb("Hello"), Code.NOT_A_MAP),
        (frame(Id="1"), Code.BAD_REQUEST),  # no Action
        (frame(Id="1", Action=7), Code.BAD_REQUEST),
        (frame(Id="1", Action="Fly"), Code.UNKNOWN_ACTION),
        (frame(Id=5, Action="Ping"), Code.BAD_REQUEST),  # Id must be a string
        (frame(Id="x" * 65, Action="Ping"), Code.BAD_REQUEST),
        (frame(Action="Ping"), Code.BAD_REQUEST),  # only Move may omit Id
        (frame(Id="1", Action="Hello"), Code.BAD_REQUEST),  # missing Version
        (frame(Id="1", Action="Hello", Version="1"), Code.BAD_REQUEST),
        (frame(Id="1", Action="Hello", Version=True), Code.BAD_REQUEST),  # bool is not an integer here
        (frame(Id="1", Action="Login", Name="bob"), Code.BAD_REQUEST),
        (frame(Id="1", Action="Move", Dir="UP"), Code.BAD_REQUEST),
        (frame(Id="1", Action="Move", X=1.5, Y=2), Code.BAD_REQUEST),
        (frame(Id="1", Action="Chat", Text="hi", Scope="world"), Code.BAD_REQUEST),
        (frame(Id="1", Action="Chat", Text="x" * 5000), Code.BAD_REQUEST),
        (frame(Id="1", Action="Whisper", Text="hi"), Code.BAD_REQUEST),
    ],
)
def test_bad_frames_raise_with_stable_codes(data, code):
    with pytest.raises(ProtocolError) as exc:
        decode(data)
    assert exc.value.code == code
    err = exc.value.frame()
    assert err["Action"] == "Error" and err["Code"] == code and err["Message"]


def test_error_names_the_field_and_carries_the_ref():
    with pytest.raises(ProtocolError) as exc:
        decode(frame(Id="abc", Action="Whisper", To="bob", Text=3))
    assert exc.value.ref == "abc"
    assert "Whisper.Text" in exc.value.message and "string" in exc.value.message


def test_good_frames_decode():
    assert decode(frame(Id="1", Action="Hello", Version=1))["Version"] == 1
    assert decode(frame(Action="Move", Dir="NE"))["Dir"] == "NE"  # fire-and-forget: no Id
    assert decode(frame(Id="2", Action="Move", X=3, Y=4))["X"] == 3


def test_response_and_error_envelopes():
    req = {"Id": "7", "Action": "Chat"}
    assert protocol.response(req, Seq=1) == {"Action": "Chat-Response", "Ref": "7", "Seq": 1}
    assert protocol.error("X", "why", "7", X=1) == {"Action": "Error", "Code": "X", "Message": "why", "Ref": "7", "X": 1}


@pytest.mark.parametrize("n", [0, 1, 15, 16, 255, 65535, 65536, 100000])
def test_array_header_matches_msgpack(n):
    items = [1] * n
    assert protocol.array_header(n) + msgpack.packb(1) * n == msgpack.packb(items)
