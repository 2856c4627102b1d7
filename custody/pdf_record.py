"""The custody report as a PDF/A-3b record that carries its own proof.

Courts file PDF, and archives want PDF/A. PDF/A-3 (ISO 19005-3) is the part that allows
embedded files of any kind, so the record embeds the exhibit bundle (without content) it was
made from: whoever holds the filed PDF can detach ``exhibit.zip`` and verify it offline with
``python -m custody.verify`` against keys they pinned, rather than trust the printed page.

WeasyPrint renders the page: it writes PDF/A-3b itself (embedded fonts, an sRGB output
intent, the XMP ``pdfaid`` identification) and embeds attachments as PDF/A-3 associated files.
Chromium prints PDF but neither PDF/A nor attachments. WeasyPrint needs Pango at run time,
so it is imported only when a record is written.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import BinaryIO

__all__ = ["BUNDLE_ATTACHMENT", "PDF_VARIANT", "PdfUnavailable", "write_pdf_record"]

PDF_VARIANT = "pdf/a-3b"
BUNDLE_ATTACHMENT = "exhibit.zip"


class PdfUnavailable(RuntimeError):
    """WeasyPrint (or the Pango library it needs) is not installed here."""


def write_pdf_record(
    report_html: str,
    bundle: bytes,
    out: BinaryIO,
    *,
    title: str,
    made_at: datetime,
) -> None:
    """Write ``report_html`` as a PDF/A-3b document to ``out``, with ``bundle`` embedded as
    ``exhibit.zip`` (relationship ``Source``: the data the page was rendered from).

    ``made_at`` is the record's creation time (an injected clock: the same inputs give the
    same document). The page must be self-contained: nothing is fetched while rendering.
    """
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: the package is there, Pango is not
        raise PdfUnavailable(
            f"PDF output needs WeasyPrint and the Pango library ({exc}); "
            "install them, or print the HTML report"
        ) from None

    def refuse_fetch(url: str, *args: object, **kwargs: object) -> dict[str, object]:
        raise ValueError(f"the report is self-contained; it may not fetch {url}")

    stamp = made_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    attachment = weasyprint.Attachment(
        file_obj=io.BytesIO(bundle),
        name=BUNDLE_ATTACHMENT,
        description="The exhibit bundle this record was made from (custos/exhibit/v3); "
        "verify it with python -m custody.verify against pinned keys",
        created=made_at,
        modified=made_at,
        relationship="Source",
    )
    document = weasyprint.HTML(string=report_html, url_fetcher=refuse_fetch).render()
    document.metadata.title = title
    document.metadata.created = stamp
    document.metadata.modified = stamp
    document.metadata.generator = "Custos"
    document.write_pdf(
        out,
        pdf_variant=PDF_VARIANT,
        attachments=[attachment],
        uncompressed_pdf=False,
    )
