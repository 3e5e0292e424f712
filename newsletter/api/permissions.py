"""Which action each admin route is, and the dependency that asks the domain's one check.

Every route of the admin API and the editor UI is in ``ROUTES`` (a test walks the app to keep
it so): the action it needs (``access.roles.Action``) and, for a route that changes something
(or exports people), the name its audit entry gets. ``authorize_token`` (here) and
``admin.auth.authorize_editor`` run before the route: they build the ``Actor``, find the
newsletter the route's issue, section or item belongs to (a per-newsletter role counts there),
and ask
``permissions.require`` (403 when the role lacks the action). After the route returns they
write the audit entry in the route's own transaction: an action that failed leaves none.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlmodel import Session

from newsletter.access import audit, permissions
from newsletter.access.permissions import Actor
from newsletter.access.roles import Action
from newsletter.api.auth import TokenDep
from newsletter.api.deps import SessionDep
from newsletter.api.inputs import MAX_ID

A = Action
#: route endpoint (module.function) -> (the action it needs, its audit name or None)
ROUTES: dict[str, tuple[Action, str | None]] = {
    # admin API
    "api.newsletters.list_newsletters": (A.read, None),
    "api.newsletters.get_newsletter": (A.read, None),
    "api.newsletters.create_newsletter": (A.newsletters_manage, "newsletter.create"),
    "api.newsletters.update_newsletter": (A.newsletters_manage, "newsletter.update"),
    "api.newsletters.get_welcome": (A.read, None),
    "api.newsletters.update_welcome": (A.newsletters_manage, "newsletter.welcome"),
    "api.newsletters.create_welcome_issue": (A.issues_draft, "issue.create"),
    "api.newsletters.publish_welcome": (A.issues_send, "welcome.publish"),
    "api.issues.get_status": (A.read, None),
    "api.issues.send": (A.issues_send, "issue.send"),
    "api.issues.pause": (A.issues_send, "issue.pause"),
    "api.issues.resume": (A.issues_send, "issue.resume"),
    "api.issues.cancel": (A.issues_send, "issue.cancel"),
    "api.issues.resend_failed": (A.issues_send, "issue.resend-failed"),
    "api.issues.schedule": (A.issues_send, "issue.schedule"),
    "api.issues.unschedule": (A.issues_send, "issue.unschedule"),
    "api.issues.pick_subject": (A.issues_send, "issue.subject-pick"),
    "api.editions.list_editions": (A.read, None),
    "api.editions.add_edition": (A.issues_draft, "issue.edition-add"),
    "api.editions.update_edition": (A.issues_draft, "issue.edit"),
    "api.editions.set_story": (A.issues_draft, "issue.edit"),
    "api.editions.set_section": (A.issues_draft, "issue.edit"),
    "api.editions.remove_edition": (A.issues_draft, "issue.edition-remove"),
    "api.review.request_review": (A.issues_draft, "issue.review-request"),
    "api.review.approve": (A.issues_review, "issue.approve"),
    "api.review.send_back": (A.issues_review, "issue.send-back"),
    "api.review.list_comments": (A.read, None),
    "api.review.add_comment": (A.issues_comment, "issue.comment"),
    "api.subscribers.list_subscribers": (A.subscribers_read, None),
    "api.subscribers.get_subscriber": (A.subscribers_read, None),
    "api.subscribers.create_subscriber": (A.subscribers_write, "subscriber.create"),
    "api.subscribers.update_subscriber": (A.subscribers_write, "subscriber.update"),
    "api.subscribers.export_subscribers": (A.subscribers_export, "subscribers.export"),
    "api.subscribers.import_subscribers": (A.subscribers_import, "subscribers.import"),
    "api.imports.preview_import": (A.subscribers_import, None),
    "api.imports.repreview_import": (A.subscribers_import, None),
    "api.imports.start_import": (A.subscribers_import, "subscribers.import"),
    "api.imports.import_status": (A.subscribers_import, None),
    "api.imports.import_report": (A.subscribers_import, None),
    "api.subscribers.erase_subscriber": (A.subscribers_erase, "subscriber.erase"),
    "api.subscribers.export_subscriber": (A.subscribers_export, "subscriber.export"),
    "api.subscriber_desk.get_profile": (A.subscribers_read, None),
    "api.subscriber_desk.subscribe": (A.subscribers_write, "subscriber.subscribe"),
    "api.subscriber_desk.unsubscribe": (A.subscribers_write, "subscriber.unsubscribe"),
    "api.subscriber_desk.resend_confirmation": (A.subscribers_write, "subscriber.resend"),
    "api.subscriber_desk.add_tag": (A.subscribers_write, "subscriber.tag"),
    "api.subscriber_desk.remove_tag": (A.subscribers_write, "subscriber.untag"),
    "api.autopilot.get_autopilot": (A.read, None),
    "api.autopilot.update_autopilot": (A.newsletters_manage, "autopilot.update"),
    "api.autopilot.add_source": (A.newsletters_manage, "autopilot.source.add"),
    "api.autopilot.remove_source": (A.newsletters_manage, "autopilot.source.remove"),
    "api.autopilot.update_source": (A.newsletters_manage, "autopilot.source.update"),
    "api.segments.list_segments": (A.subscribers_read, None),
    "api.segments.get_segment": (A.subscribers_read, None),
    "api.segments.count_rules": (A.subscribers_read, None),
    "api.segments.create_segment": (A.subscribers_write, "segment.create"),
    "api.segments.update_segment": (A.subscribers_write, "segment.update"),
    "api.segments.delete_segment": (A.subscribers_write, "segment.delete"),
    "api.segments.tag_subscribers": (A.subscribers_write, "subscribers.tag"),
    "api.bounces.process_bounce": (A.subscribers_write, "bounce.process"),
    "api.analytics.get_issue_report": (A.analytics_read, None),
    "api.analytics.issue_report_csv": (A.analytics_read, None),
    "api.analytics.get_trends": (A.analytics_read, None),
    "api.analytics.trends_csv": (A.analytics_read, None),
    "api.webhooks.create": (A.webhooks_manage, "webhook.create"),
    "api.webhooks.list_all": (A.webhooks_manage, None),
    "api.webhooks.get": (A.webhooks_manage, None),
    "api.webhooks.remove": (A.webhooks_manage, "webhook.remove"),
    "api.webhooks.list_deliveries": (A.webhooks_manage, None),
    # editor UI
    "admin.account.account": (A.read, None),
    "admin.account.begin": (A.read, None),
    "admin.account.confirm": (A.read, "account.2fa-on"),
    "admin.account.disable": (A.read, "account.2fa-off"),
    "admin.audit.audit_page": (A.audit_read, None),
    "admin.dashboard.dashboard": (A.read, None),
    "admin.signin.logout": (A.read, None),
    "admin.composer.create_issue": (A.issues_draft, "issue.create"),
    "admin.review.request_review": (A.issues_draft, "issue.review-request"),
    "admin.review.approve": (A.issues_review, "issue.approve"),
    "admin.review.send_back": (A.issues_review, "issue.send-back"),
    "admin.review.add_comment": (A.issues_comment, "issue.comment"),
    "admin.composer.composer": (A.read, None),
    "admin.composer.save_details": (A.issues_draft, "issue.edit"),
    "admin.composer.add_section": (A.issues_draft, "issue.edit"),
    "admin.composer.move_section": (A.issues_draft, "issue.edit"),
    "admin.composer.rename_section": (A.issues_draft, "issue.edit"),
    "admin.composer.delete_section": (A.issues_draft, "issue.edit"),
    "admin.composer.add_item": (A.issues_draft, "issue.edit"),
    "admin.composer.move_item": (A.issues_draft, "issue.edit"),
    "admin.composer.set_blurb": (A.issues_draft, "issue.edit"),
    "admin.editions.editions_page": (A.read, None),
    "admin.editions.edition_preview": (A.read, None),
    "admin.editions.add_edition": (A.issues_draft, "issue.edition-add"),
    "admin.editions.save_edition": (A.issues_draft, "issue.edit"),
    "admin.editions.remove_edition": (A.issues_draft, "issue.edition-remove"),
    "admin.composer.delete_item": (A.issues_draft, "issue.edit"),
    "admin.composer.preview_html": (A.read, None),
    "admin.composer.preview_text": (A.read, None),
    "admin.composer.qa_json": (A.read, None),
    "admin.composer.composer_spam": (A.read, None),
    "admin.composer_qa.spam_check_json": (A.read, None),
    "admin.composer.test_send": (A.issues_draft, "issue.test-send"),
    "admin.composer.schedule": (A.issues_send, "issue.schedule"),
    "admin.composer.unschedule": (A.issues_send, "issue.unschedule"),
    "admin.composer.confirm_send": (A.issues_send, None),
    "admin.composer.choose_segment": (A.issues_send, "issue.segment"),
    "admin.composer.send_now": (A.issues_send, "issue.send"),
    "admin.subject_test.save_subject_test": (A.issues_send, "issue.subject-test"),
    "admin.local_time.save_local_time": (A.issues_send, "issue.local-time"),
    "admin.subject_test.pick_subject": (A.issues_send, "issue.subject-pick"),
    "admin.sending.sending": (A.read, None),
    "admin.sending.status_json": (A.read, None),
    "admin.sending.pause": (A.issues_send, "issue.pause"),
    "admin.sending.resume": (A.issues_send, "issue.resume"),
    "admin.sending.cancel": (A.issues_send, "issue.cancel"),
    "admin.sending.resend_failed": (A.issues_send, "issue.resend-failed"),
    "admin.analytics.issue_report_page": (A.analytics_read, None),
    "admin.analytics.heat_frame": (A.analytics_read, None),
    "admin.analytics.issue_report_csv": (A.analytics_read, None),
    "admin.analytics.newsletter_analytics": (A.analytics_read, None),
    "admin.analytics.trends_csv": (A.analytics_read, None),
    "admin.articles.article_list": (A.read, None),
    "admin.articles.new_article": (A.articles_write, None),
    "admin.articles.import_form": (A.articles_write, None),
    "admin.articles.edit_article": (A.read, None),
    "admin.articles.create_article": (A.articles_write, "article.create"),
    "admin.articles.import_feed": (A.articles_write, "articles.import"),
    "admin.articles.import_file": (A.articles_write, "articles.import"),
    "admin.articles.update_article": (A.articles_write, "article.update"),
    "admin.subscribers.subscriber_list": (A.subscribers_read, None),
    "admin.subscribers.new_subscriber": (A.subscribers_write, None),
    "admin.subscribers.create_subscriber": (A.subscribers_write, "subscriber.create"),
    "admin.imports.import_form": (A.subscribers_import, None),
    "admin.imports.upload_import": (A.subscribers_import, None),
    "admin.imports.import_page": (A.subscribers_import, None),
    "admin.imports.choose_import": (A.subscribers_import, None),
    "admin.imports.start_import": (A.subscribers_import, "subscribers.import"),
    "admin.imports.import_status": (A.subscribers_import, None),
    "admin.imports.import_report": (A.subscribers_import, None),
    "admin.subscribers.export_subscribers": (A.subscribers_export, "subscribers.export"),
    "admin.subscriber_page.subscriber_page": (A.subscribers_read, None),
    "admin.subscriber_page.edit": (A.subscribers_write, "subscriber.update"),
    "admin.subscriber_page.save_attributes": (A.subscribers_write, "subscriber.update"),
    "admin.subscriber_page.add_tag": (A.subscribers_write, "subscriber.tag"),
    "admin.subscriber_page.remove_tag": (A.subscribers_write, "subscriber.untag"),
    "admin.subscriber_page.subscribe": (A.subscribers_write, "subscriber.subscribe"),
    "admin.subscriber_page.unsubscribe": (A.subscribers_write, "subscriber.unsubscribe"),
    "admin.subscriber_page.resend": (A.subscribers_write, "subscriber.resend"),
    "admin.subscriber_page.export_data": (A.subscribers_export, "subscriber.export"),
    "admin.subscriber_page.erase": (A.subscribers_erase, "subscriber.erase"),
    "admin.segments.segment_list": (A.subscribers_read, None),
    "admin.segments.new_segment": (A.subscribers_read, None),
    "admin.segments.edit_segment": (A.subscribers_read, None),
    "admin.segments.count_segment": (A.subscribers_read, None),
    "admin.segments.create_segment": (A.subscribers_write, "segment.create"),
    "admin.segments.update_segment": (A.subscribers_write, "segment.update"),
    "admin.segments.delete_segment": (A.subscribers_write, "segment.delete"),
    "admin.segments.tag_subscribers": (A.subscribers_write, "subscribers.tag"),
    "admin.autopilot.autopilot_page": (A.read, None),
    "admin.autopilot.save_autopilot": (A.newsletters_manage, "autopilot.update"),
    "admin.autopilot.add_source": (A.newsletters_manage, "autopilot.source.add"),
    "admin.autopilot.remove_source": (A.newsletters_manage, "autopilot.source.remove"),
    "admin.autopilot.update_source": (A.newsletters_manage, "autopilot.source.update"),
    "admin.newsletters.newsletter_list": (A.read, None),
    "admin.newsletters.new_newsletter": (A.newsletters_manage, None),
    "admin.newsletters.create_newsletter": (A.newsletters_manage, "newsletter.create"),
    "admin.newsletters.newsletter_settings": (A.read, None),
    "admin.newsletters.update_newsletter": (A.newsletters_manage, "newsletter.update"),
    "admin.newsletters.save_welcome": (A.newsletters_manage, "newsletter.welcome"),
    "admin.newsletters.create_welcome": (A.issues_draft, "issue.create"),
    "admin.newsletters.publish_welcome": (A.issues_send, "welcome.publish"),
}

#: a path parameter -> the kind of object it names, in audit entries
TARGETS = {
    "issue_id": "issue",
    "section_id": "section",
    "item_id": "item",
    "article_id": "article",
    "subscriber_id": "subscriber",
    "endpoint_id": "webhook",
    "newsletter_id": "newsletter",
    "segment_id": "segment",
}


def route_key(request: Request) -> str:
    endpoint = request.scope["route"].endpoint
    return endpoint_key(endpoint.__module__, endpoint.__name__)


def endpoint_key(module: str, name: str) -> str:
    """``api.issues.send`` for the admin API's routes, ``admin.composer.send_now`` for the UI's."""
    short = module.removeprefix("newsletter.api.")
    return f"{short if short.startswith('admin.') else 'api.' + short}.{name}"


def _ids(request: Request) -> dict[str, int]:
    """The object ids in the path; one out of range is left to the route's own 422."""
    found = {}
    for name, value in request.path_params.items():
        text = str(value)
        if name in TARGETS and text.isascii() and text.isdigit() and len(text) <= 10:
            number = int(text)
            if 1 <= number <= MAX_ID:
                found[name] = number
    return found


def authorized(request: Request, session: Session, actor: Actor) -> Iterator[Actor]:
    """The check before the route, the audit entry after it (see the module's text)."""
    action, audit_name = ROUTES[route_key(request)]  # a route missing here is a bug: 500
    ids = _ids(request)
    # which issue and newsletter: for a per-newsletter role, and for the audit entry; a plain
    # read by someone with one role everywhere needs neither (no lookups on every page view)
    issue_id, newsletter_id = (
        permissions.issue_of(
            session,
            issue_id=ids.get("issue_id"),
            section_id=ids.get("section_id"),
            item_id=ids.get("item_id"),
        )
        if audit_name is not None or actor.per_newsletter
        else (None, None)
    )
    if newsletter_id is None and actor.per_newsletter:
        newsletter_id = ids.get("newsletter_id")  # a newsletter's own page (its analytics)
    permissions.require(actor, action, newsletter_id=newsletter_id)
    request.state.actor = actor
    yield actor
    # the route returned: its change and this entry commit together; a route that answered
    # with its form refused (nothing changed, the page again) sets request.state.refused
    if audit_name is not None and not getattr(request.state, "refused", False):
        # a section's or an item's change is its issue's: the entry names the issue; a route
        # that made its object names it in request.state.audit_target, e.g. ("issue", 7)
        target = ("issue_id", issue_id) if issue_id else next(iter(ids.items()), None)
        kind, target_id = (TARGETS[target[0]], target[1]) if target else ("", None)
        kind, target_id = getattr(request.state, "audit_target", (kind, target_id))
        audit.record(
            session,
            actor,
            audit_name,
            target_type=kind,
            target_id=target_id,
            newsletter_id=newsletter_id,
        )


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def authorize_token(request: Request, token: TokenDep, session: SessionDep) -> Iterator[Actor]:
    yield from authorized(request, session, permissions.token_actor(token, ip=client_ip(request)))
