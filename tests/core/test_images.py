"""Images in requests: paths, bytes and base64 accepted, URLs refused, routing only to specialists that see."""

import base64
import io

import pytest
from click.testing import CliRunner
from PIL import Image as PIL  # noqa: E402  (a core dependency)

from aeth import Request, Specialist, hookimpl
from aeth.app import Aeth
from aeth.cli import cli
from aeth.errors import RoutingError
from aeth.images import ImageError, image_bytes, load_image, to_data_uri


@pytest.fixture
def png(tmp_path):
    buf = io.BytesIO()
    PIL.new("RGB", (8, 4), (255, 0, 0)).save(buf, format="PNG")
    (tmp_path / "red.png").write_bytes(buf.getvalue())
    return tmp_path / "red.png"


def test_every_accepted_form_gives_the_same_image(png):
    data = png.read_bytes()
    forms = [str(png), png, data, to_data_uri(data), base64.b64encode(data).decode()]
    for form in forms:
        img = load_image(form)
        assert img.size == (8, 4) and img.getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize("ref,message", [
    ("https://example.com/cat.png", "does not fetch images from URLs"),
    ("/no/such/cat.png", "no such file"),
    ("data:image/png;base64,@@@not-base64@@@", "not valid base64"),
    (12, "expected a path, bytes or base64"),
])
def test_unusable_references_say_why(ref, message):
    with pytest.raises(ImageError, match=message):
        image_bytes(ref)


def test_a_broken_image_fails_on_load(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageError, match="image 2: not a readable image"):
        load_image(tmp_path / "bad.png", index=1)


class Seer:
    @hookimpl
    def register_specialists(self, register):
        register(Specialist(name="seer", description="looks at images", accepts_images=True,
                            routing_examples=("What is in this picture?",)))


def test_requests_with_images_route_only_to_specialists_that_see(aeth_home, png):
    from aeth.plugins import PluginHost

    host = PluginHost()  # aeth's defaults only: installed plugins (a real vision one) stay out
    host.load_defaults()
    app = Aeth(host=host)
    with pytest.raises(RoutingError, match="no installed specialist accepts images"):
        app.route(Request("Write a Python function", images=(str(png),)))
    assert host.register(Seer(), "seer-plugin")
    winner, bids = app.route(Request("Write a Python function that sorts a list", images=(str(png),)))
    assert winner.specialist == "seer" and {b.specialist for b in bids} == {"seer"}
    # and a request without images never goes to it, however close its examples are
    assert app.route(Request("What is in this picture?"))[0].specialist != "seer"
    assert app.route(Request("What is in this picture?", specialist="seer"))[0].specialist == "seer"


def test_run_checks_images_before_anything_else(aeth_home):
    out = CliRunner().invoke(cli, ["run", "--image", "missing.png", "what is this?"])
    assert out.exit_code == 1 and "image 1: no such file" in out.output
