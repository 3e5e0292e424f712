"""The content wing: articles in, issues assembled, checked, rendered and archived.

- ``articles``: the article library: ``ArticleCreate``, upsert by URL, create/edit, list, import
- ``importers``: reading JSON/YAML lists, RSS/Atom files, feed URLs and uploads into records
- ``sanitize``: HTML reduced to the email allow-list (nh3), and plain-text helpers
- ``issues``: issue assembly: drafts, sections, ordered items, blurbs, and the outline
- ``qa``: the QA report before a send, from the outline and the compiled email
- ``rendering``: the outline compiled once (Jinja2 -> MJML -> HTML, text twin), personalised
- ``archive``: sent issues as the public archive and its Atom feeds

Other wings import the submodules (``from newsletter.content.issues import load_outline``);
the names below are the wing's public verbs, in one place.
"""

from __future__ import annotations

from newsletter.content.archive import (
    ArchivedIssue,
    archived_html,
    get_archived,
    newsletter_feed,
    sent_issues,
    site_feed,
)
from newsletter.content.articles import (
    ArticleCreate,
    ImportResult,
    create_article,
    get_article,
    import_feed,
    import_file,
    import_records,
    import_upload,
    list_articles,
    list_sections,
    update_article,
    upsert_article,
)
from newsletter.content.issues import (
    IssueOutline,
    add_item,
    add_section,
    create_issue,
    find_section,
    get_issue,
    load_outline,
    move_item,
    move_section,
    remove_item,
    remove_section,
    rename_section,
    section_by_title,
    set_blurb,
    update_issue,
)
from newsletter.content.qa import Finding, QAReport, qa_report
from newsletter.content.rendering import CompiledIssue, Personaliser, compile_issue, personalise
from newsletter.content.sanitize import plain_text, sanitize_html

__all__ = [
    "ArchivedIssue",
    "ArticleCreate",
    "CompiledIssue",
    "Finding",
    "ImportResult",
    "IssueOutline",
    "Personaliser",
    "QAReport",
    "add_item",
    "add_section",
    "archived_html",
    "compile_issue",
    "create_article",
    "create_issue",
    "find_section",
    "get_archived",
    "get_article",
    "get_issue",
    "import_feed",
    "import_file",
    "import_records",
    "import_upload",
    "list_articles",
    "list_sections",
    "load_outline",
    "move_item",
    "move_section",
    "newsletter_feed",
    "personalise",
    "plain_text",
    "qa_report",
    "remove_item",
    "remove_section",
    "rename_section",
    "sanitize_html",
    "section_by_title",
    "sent_issues",
    "set_blurb",
    "site_feed",
    "update_article",
    "update_issue",
    "upsert_article",
]
