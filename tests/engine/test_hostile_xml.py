"""Hostile XML through bpmn.parse_xml, registry.deploy and registry.check_dmn: refused, fast, nothing deployed."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select

from engine import bpmn
from engine.config import PROJECT_ROOT
from engine.definitions import registry
from engine.errors import InvalidDefinitionError
from engine.people import identity
from engine.storage.db import Database
from engine.storage.models import AuditEvent, ProcessDefinition

DATA = Path(__file__).resolve().parents[1] / "data" / "registry"
PASSWD = Path("/etc/passwd").read_text(encoding="utf-8")
# Lines of /etc/passwd that cannot occur by chance in an error message ("root:x:0:0:...").
PASSWD_LINES = [line for line in PASSWD.splitlines() if line.count(":") >= 6]
KEY = "hostile"
BPMN_NS = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"'
)


def process_xml(
    task_name: str = "复核", documentation: str = "", *, prolog: str = "", extra_ns: str = ""
) -> str:
    """A valid one-task process; the hostile variants only add a prolog or change a text."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"{prolog}"
        f'<bpmn:definitions {BPMN_NS} {extra_ns} id="Definitions_{KEY}" targetNamespace="https://opsflow.example/tests">'
        f'<bpmn:process id="{KEY}" name="敌意测试" isExecutable="true">'
        '<bpmn:startEvent id="start"/>'
        f'<bpmn:userTask id="task" name="{task_name}">'
        f"<bpmn:documentation>{documentation}</bpmn:documentation>"
        "<bpmn:extensionElements><spiffworkflow:properties>"
        '<spiffworkflow:property name="assignee" value="starter"/>'
        "</spiffworkflow:properties></bpmn:extensionElements>"
        "</bpmn:userTask>"
        '<bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>'
        "</bpmn:process></bpmn:definitions>"
    )


XXE_PROLOG = '<!DOCTYPE bpmn:definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
XXE = process_xml("&xxe;", prolog=XXE_PROLOG)
LAUGHS_PROLOG = (
    "<!DOCTYPE bpmn:definitions [\n"
    '<!ENTITY lol0 "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
    + "]>\n"
)
BILLION_LAUGHS = process_xml("&lol9;", prolog=LAUGHS_PROLOG)
NOT_WELL_FORMED = process_xml().replace("</bpmn:userTask>", "</bpmn:task>")


def files(bpmn_xml: str, dmn_files: dict[str, str] | None = None) -> registry.ProcessFiles:
    return registry.ProcessFiles(f"{KEY}.bpmn", bpmn_xml, dmn_files or {}, {})


def deploy(db: Database, process: registry.ProcessFiles) -> registry.DeployedVersion:
    with db.unit_of_work() as session:
        return registry.deploy(session, identity.SYSTEM, process)


def refused(db: Database, process: registry.ProcessFiles) -> InvalidDefinitionError:
    """Deploy must raise InvalidDefinitionError; return it for the message checks."""
    with pytest.raises(InvalidDefinitionError) as error:
        deploy(db, process)
    return error.value


def assert_nothing_deployed(db: Database, key: str = KEY) -> None:
    with db.read() as session:
        assert registry.find_latest(session, key) is None
        assert session.scalar(select(func.count()).select_from(ProcessDefinition)) == 0
        deployed_events = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.type == "definition_deployed")
        )
        assert deployed_events == 0


def full_text(error: InvalidDefinitionError) -> str:
    return " ".join([str(error), *(str(problem) for problem in error.problems)])


def assert_no_passwd(text: str) -> None:
    assert PASSWD_LINES, "the test needs /etc/passwd lines to look for"
    for line in PASSWD_LINES:
        assert line not in text
    assert "root:x:" not in text


# --- the base document is valid: every refusal below is due to the hostile part alone ---


def test_the_unmodified_base_document_deploys(db: Database) -> None:
    version = deploy(db, files(process_xml()))
    assert (version.key, version.version, version.created) == (KEY, 1, True)


def test_the_repository_expense_process_deploys(db: Database) -> None:
    batch = registry.read_directory(PROJECT_ROOT / "processes")
    expense = next(f for f in batch if f.source == "expense_reimbursement.bpmn")
    version = deploy(db, expense)
    assert (version.key, version.version, version.created) == ("expense_reimbursement", 1, True)
    with db.read() as session:
        definition = registry.find_latest(session, "expense_reimbursement")
        assert definition is not None
        assert definition.sha256 == version.sha256
        assert set(definition.dmn_files) == {"expense_approval.dmn"}


# --- (a) XXE ---


def test_xxe_is_refused_by_parse_xml_without_reading_the_file() -> None:
    with pytest.raises(InvalidDefinitionError) as error:
        bpmn.parse_xml(XXE, "xxe.bpmn")
    text = full_text(error.value)
    assert "DOCTYPE" in text
    assert error.value.problems[0].file == "xxe.bpmn"
    assert_no_passwd(text)


def test_xxe_in_a_task_name_is_refused_by_deploy_and_nothing_is_deployed(db: Database) -> None:
    error = refused(db, files(XXE))
    text = full_text(error)
    assert "DOCTYPE and ENTITY declarations are not allowed" in text
    assert [p.file for p in error.problems] == [f"{KEY}.bpmn"]
    assert_no_passwd(text)
    assert_nothing_deployed(db)


def test_xxe_encoded_as_utf16_is_still_refused_without_reading_the_file() -> None:
    # UTF-16 hides "<!DOCTYPE" from a byte-level scan: the parser itself must refuse it.
    raw = XXE.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert b"<!DOCTYPE" not in raw
    with pytest.raises(InvalidDefinitionError) as error:
        bpmn.parse_xml(raw, "xxe16.bpmn")
    assert_no_passwd(full_text(error.value))


# --- (b) billion laughs ---


def test_billion_laughs_is_refused_fast_by_parse_xml() -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidDefinitionError, match="DOCTYPE"):
        bpmn.parse_xml(BILLION_LAUGHS, "laughs.bpmn")
    assert time.perf_counter() - started < 1.0


def test_billion_laughs_is_refused_fast_by_deploy_and_nothing_is_deployed(db: Database) -> None:
    started = time.perf_counter()
    error = refused(db, files(BILLION_LAUGHS))
    assert time.perf_counter() - started < 1.0
    assert "entity expansion" in full_text(error)
    assert "lollol" not in full_text(error)
    assert_nothing_deployed(db)


def test_billion_laughs_encoded_as_utf16_still_fails_fast() -> None:
    raw = BILLION_LAUGHS.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert b"<!ENTITY" not in raw
    started = time.perf_counter()
    with pytest.raises(InvalidDefinitionError) as error:
        bpmn.parse_xml(raw, "laughs16.bpmn")
    assert time.perf_counter() - started < 1.0
    assert "lollol" not in full_text(error.value)


# --- (c) size ---


def test_a_50_mb_file_is_refused_as_too_large_fast(db: Database) -> None:
    huge = process_xml(documentation="说明" * (50 * 1024 * 1024 // 6 + 1))
    assert len(huge.encode()) > 50 * 1024 * 1024
    started = time.perf_counter()
    with pytest.raises(InvalidDefinitionError, match="too large") as parsed:
        bpmn.parse_xml(huge, "huge.bpmn")
    error = refused(db, files(huge))
    assert time.perf_counter() - started < 1.0
    assert "too large" in full_text(error)
    assert "limit 5 MB" in full_text(error)
    assert "too large" in full_text(parsed.value)
    assert_nothing_deployed(db)


def test_the_size_limit_counts_utf8_bytes_not_characters() -> None:
    # 1.9 million Chinese characters: under 5 M characters, but about 5.7 MB of UTF-8.
    text = process_xml(documentation="说" * 1_900_000)
    assert len(text) < bpmn.MAX_XML_BYTES < len(text.encode())
    with pytest.raises(InvalidDefinitionError, match="too large"):
        bpmn.parse_xml(text, "wide.bpmn")


def test_a_file_just_under_the_limit_is_not_refused_for_its_size() -> None:
    text = process_xml(documentation="a" * (bpmn.MAX_XML_BYTES - 4096))
    assert len(text.encode()) <= bpmn.MAX_XML_BYTES
    process = bpmn.parse_xml(text, "big.bpmn").find("{*}process")
    assert process is not None
    assert process.get("id") == KEY


# --- (d) not well-formed ---


@pytest.mark.parametrize(
    "text",
    [NOT_WELL_FORMED, "", "not xml at all", process_xml()[:-10], '<a x="1"/><b/>'],
    ids=["mismatched-tag", "empty", "text", "truncated", "two-roots"],
)
def test_not_well_formed_xml_is_refused_by_parse_xml(text: str) -> None:
    with pytest.raises(InvalidDefinitionError, match="not well-formed"):
        bpmn.parse_xml(text, "broken.bpmn")


def test_not_well_formed_xml_is_refused_by_deploy_and_nothing_is_deployed(db: Database) -> None:
    error = refused(db, files(NOT_WELL_FORMED))
    assert "XML is not well-formed" in full_text(error)
    assert "userTask" in full_text(error)  # lxml's own words say where
    assert_nothing_deployed(db)


# --- (e) external DTD: refused, and never fetched ---


@pytest.fixture
def dtd_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server serving a DTD; yields (URL, the paths it was asked for)."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body = b'<!ENTITY leak "LEAKED-THROUGH-DTD">'
            self.send_response(200)
            self.send_header("Content-Type", "application/xml-dtd")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/x.dtd", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_external_dtd_is_refused_before_parsing_and_never_fetched(
    db: Database, dtd_server: tuple[str, list[str]]
) -> None:
    url, requests = dtd_server
    text = process_xml(prolog=f'<!DOCTYPE bpmn:definitions SYSTEM "{url}">\n')
    with pytest.raises(InvalidDefinitionError) as parsed:
        bpmn.parse_xml(text, "dtd.bpmn")
    error = refused(db, files(text))
    # The DOCTYPE/ENTITY scan refuses the file before lxml sees it.
    assert "DOCTYPE and ENTITY declarations are not allowed" in full_text(parsed.value)
    assert "DOCTYPE and ENTITY declarations are not allowed" in full_text(error)
    assert requests == []
    assert_nothing_deployed(db)


def test_external_dtd_after_a_long_comment_is_still_refused_and_never_fetched(
    db: Database, dtd_server: tuple[str, list[str]]
) -> None:
    # The DOCTYPE comes after 70 KB of comment, beyond the fast scan: the parser's settings must hold.
    url, requests = dtd_server
    prolog = f'<!-- {"x" * 70_000} -->\n<!DOCTYPE bpmn:definitions SYSTEM "{url}">\n'
    text = process_xml("&leak;", prolog=prolog)
    with pytest.raises(InvalidDefinitionError) as parsed:
        bpmn.parse_xml(text, "late.bpmn")
    error = refused(db, files(text))
    assert requests == []
    for message in (full_text(parsed.value), full_text(error)):
        assert "LEAKED-THROUGH-DTD" not in message
    assert_nothing_deployed(db)


# --- (f) XInclude is not processed ---


def test_xinclude_is_not_processed(db: Database, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-5f0c1e", encoding="utf-8")
    includes = (
        f'see <xi:include href="{secret}" parse="text"/> and '
        '<xi:include href="/etc/passwd" parse="text"/>'
    )
    text = process_xml(
        documentation=includes, extra_ns='xmlns:xi="http://www.w3.org/2001/XInclude"'
    )
    root = bpmn.parse_xml(text, "xi.bpmn")
    serialized = etree.tostring(root, encoding="unicode")
    assert "TOP-SECRET" not in serialized
    assert_no_passwd(serialized)
    assert len(root.findall(".//{http://www.w3.org/2001/XInclude}include")) == 2

    compiled = bpmn.compile_process(text, "xi.bpmn")
    shown = [compiled.name, *(task.name for task in compiled.user_tasks.values())]
    shown += [
        f"{spec.bpmn_name} {spec.documentation}"
        for spec in compiled.spec.task_specs.values()
        if getattr(spec, "documentation", None) is not None
    ]
    assert compiled.spec.task_specs["task"].documentation.startswith("see ")
    for value in shown:
        assert "TOP-SECRET" not in value
        assert_no_passwd(value)

    # Harmless as it is, the file deploys, and what is stored is the text as written.
    version = deploy(db, files(text))
    with db.read() as session:
        definition = registry.find_latest(session, KEY)
        assert definition is not None
        assert definition.sha256 == version.sha256
        assert "TOP-SECRET" not in definition.bpmn_xml + definition.name
        assert_no_passwd(definition.bpmn_xml)


# --- (g) DMN with an external entity ---

DMN_XXE = (
    (DATA / "amount_band.dmn")
    .read_text(encoding="utf-8")
    .replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    )
    .replace("&quot;small&quot;", "&xxe;")
)


def test_the_unmodified_dmn_passes_check_dmn() -> None:
    assert (
        registry.check_dmn((DATA / "amount_band.dmn").read_text(encoding="utf-8"), "ok.dmn") == []
    )


def test_a_dmn_with_an_external_entity_is_refused_by_check_dmn() -> None:
    assert "&xxe;" in DMN_XXE
    problems = registry.check_dmn(DMN_XXE, "amount_band.dmn")
    assert len(problems) == 1
    assert problems[0].file == "amount_band.dmn"
    assert "DOCTYPE and ENTITY declarations are not allowed" in problems[0].message
    assert_no_passwd(problems[0].message)


def test_a_process_using_a_dmn_with_an_external_entity_is_not_deployed(db: Database) -> None:
    banding = (DATA / "banding.bpmn").read_text(encoding="utf-8")
    error = refused(
        db, registry.ProcessFiles("banding.bpmn", banding, {"amount_band.dmn": DMN_XXE}, {})
    )
    assert "amount_band.dmn" in [p.file for p in error.problems]
    assert "DOCTYPE" in full_text(error)
    assert_no_passwd(full_text(error))
    assert_nothing_deployed(db, "banding")
    # The same process with the clean table deploys.
    clean = (DATA / "amount_band.dmn").read_text(encoding="utf-8")
    version = deploy(
        db, registry.ProcessFiles("banding.bpmn", banding, {"amount_band.dmn": clean}, {})
    )
    assert (version.key, version.created) == ("banding", True)
