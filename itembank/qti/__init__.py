"""QTI 3.0 and 2.x: the item bank's import and export (1EdTech Question and Test
Interoperability), in files by idea:

- ``safety``: hostile input refused (XML entities and DTDs, zip paths and bombs, sizes);
- ``dialect``: the 3.0 and 2.x spellings, read into one and written from one;
- ``content``: the bank's HTML and media as QTI's XHTML and package files;
- ``writing`` / ``reading``: one item document out / in, type by type;
- ``processing``: response processing, templates by name and plain inline rules evaluated;
- ``metadata``: LOM, qtiMetadata, Microcred's extension and usage data (statistics);
- ``package``: content packages (``imsmanifest.xml``), export and the two-step import;
- ``csv_import``: plain multiple-choice banks from a spreadsheet;
- ``report``: what an import did, item by item.
"""
from itembank.qti.package import export_package, import_package, read_package
from itembank.qti.report import ImportReport
from itembank.qti.safety import PackageRefused

__all__ = ["ImportReport", "PackageRefused", "export_package", "import_package",
           "read_package"]
