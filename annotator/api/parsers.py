"""Reading request bodies, one way for the labeling hot path (annotator.api.hot) and every DRF view (the parser
classes here are the project's DEFAULT_PARSER_CLASSES): whatever a client sends, a body that cannot be read is a
400 `parse_error` with a message, never a 500.

JSON: the encoding comes from the bytes (UTF-8, with or without a BOM, or UTF-16/32), never from a `charset=`
parameter, which RFC 8259 does not define for application/json. NaN and Infinity are refused, as DRF's strict
default does. Nesting deeper than Python's recursion limit (a 2 KB body of brackets) is refused where the parser
hits it, so a normal body pays nothing for the check.
Forms: Django decodes them in the request's `charset=`, which may name a codec that decodes no text (zlib_codec,
idna, undefined, ...).
Like annotator.api.authentication, this module must not import DRF's views: DRF loads its default parsers while
it defines APIView.
"""

import json
from contextlib import contextmanager

from django.http import HttpRequest, QueryDict
from django.http.multipartparser import MultiPartParserError
from rest_framework import parsers
from rest_framework.exceptions import ParseError

TOO_DEEP = "JSON parse error - nested too deeply."
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _refuse_constant(name: str):
    raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")


# One decoder for every request: json.loads with any option builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def json_body(body: bytes):
    """The JSON document in `body` (any JSON value; the endpoint's serializer checks its shape), or ParseError."""
    try:
        # What json.loads does with bytes, but strict: bytes that are not UTF-8/16/32 are an error, not surrogates.
        return _DECODER.decode(body.decode(json.detect_encoding(body)))
    except RecursionError:
        raise ParseError(TOO_DEEP) from None
    except ValueError as error:  # bad syntax or encoding, or an integer over Python's 4300-digit limit
        if "integer string conversion" in str(error):  # Python's message advises a call only a server can make
            raise ParseError("JSON parse error - a number has more than 4300 digits.") from None
        raise ParseError(f"JSON parse error - {error}") from None


@contextmanager
def form_readable():
    """Turns the errors of reading a form body (a broken multipart, a charset that decodes no text) into
    ParseError. Django's own refusals (too large, too many fields) pass through: they are its 400s."""
    try:
        yield
    except (MultiPartParserError, UnicodeError, LookupError) as error:
        raise ParseError(f"Form body could not be read: {error}") from None


def form_fields(request: HttpRequest) -> QueryDict:
    with form_readable():
        return request.POST


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        # DRF hands a JSONParser the body Django read (DATA_UPLOAD_MAX_MEMORY_SIZE checked) as a BytesIO.
        return json_body(stream.read())


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        with form_readable():
            return super().parse(stream, media_type, parser_context)


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        with form_readable():
            return super().parse(stream, media_type, parser_context)
