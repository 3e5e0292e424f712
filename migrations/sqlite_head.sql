-- schema at revision 0034
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0034');
CREATE TABLE apitoken (
	id INTEGER NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	token_hash VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	last_used_at DATETIME, 
	revoked_at DATETIME, role VARCHAR(20) DEFAULT 'admin' NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE article (
	id INTEGER NOT NULL, 
	url VARCHAR(2000) NOT NULL, 
	title VARCHAR NOT NULL, 
	summary TEXT NOT NULL, 
	bullet TEXT DEFAULT '' NOT NULL, 
	body_html TEXT NOT NULL, 
	image_url VARCHAR, 
	image_alt VARCHAR, 
	image_credit VARCHAR, 
	author VARCHAR, 
	section VARCHAR, 
	tags JSON NOT NULL, 
	published_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE auditentry (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	actor_kind VARCHAR(10) NOT NULL, 
	actor_id INTEGER, 
	actor_label VARCHAR(320) NOT NULL, 
	action VARCHAR(60) NOT NULL, 
	target_type VARCHAR(30) NOT NULL, 
	target_id INTEGER, 
	newsletter_id INTEGER, 
	ip VARCHAR(45), 
	detail VARCHAR(500) NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE autopilot (
	id INTEGER NOT NULL, 
	newsletter_id INTEGER NOT NULL, 
	enabled BOOLEAN NOT NULL, 
	rule VARCHAR(200) NOT NULL, 
	lead_hours INTEGER NOT NULL, 
	sections JSON NOT NULL, 
	other_section VARCHAR(200) NOT NULL, 
	ordering VARCHAR(16) NOT NULL, 
	priority_tag VARCHAR(200) NOT NULL, 
	per_section INTEGER NOT NULL, 
	lead VARCHAR(16) NOT NULL, 
	nothing_new VARCHAR(16) NOT NULL, 
	note_text TEXT NOT NULL, 
	auto_schedule BOOLEAN NOT NULL, 
	lookback_days INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, catch_up_hours INTEGER DEFAULT '24' NOT NULL, 
	FOREIGN KEY(newsletter_id) REFERENCES newsletter (id), 
	PRIMARY KEY (id), 
	UNIQUE (newsletter_id)
);
CREATE TABLE autopilot_run (
	id INTEGER NOT NULL, 
	newsletter_id INTEGER NOT NULL, 
	run_at DATETIME NOT NULL, 
	outcome VARCHAR(16) NOT NULL, 
	issue_id INTEGER, 
	stories INTEGER NOT NULL, 
	detail JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	notified_at DATETIME, 
	FOREIGN KEY(issue_id) REFERENCES issue (id), 
	FOREIGN KEY(newsletter_id) REFERENCES newsletter (id), 
	PRIMARY KEY (id), 
	UNIQUE (newsletter_id, run_at)
);
CREATE TABLE bouncereceipt (
	id INTEGER NOT NULL, 
	event_key VARCHAR(255) NOT NULL, 
	source VARCHAR(16) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	issue_id INTEGER, 
	subscriber_id INTEGER, 
	received_at DATETIME NOT NULL, 
	FOREIGN KEY(issue_id) REFERENCES issue (id), 
	PRIMARY KEY (id), 
	UNIQUE (event_key)
);
CREATE TABLE confirmationoutbox (
	id INTEGER NOT NULL, 
	subscriber_id INTEGER NOT NULL, 
	newsletter_ids JSON NOT NULL, 
	source VARCHAR(2000) NOT NULL, 
	consent_text_version VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	next_attempt_at DATETIME NOT NULL, 
	relayed_at DATETIME, 
	attempts INTEGER NOT NULL, 
	last_error TEXT, 
	send_lease_until DATETIME, 
	send_token VARCHAR(32), 
	sent_at DATETIME, 
	FOREIGN KEY(subscriber_id) REFERENCES subscriber (id), 
	PRIMARY KEY (id)
);
CREATE TABLE delivery (
	id INTEGER NOT NULL, 
	issue_id INTEGER NOT NULL, 
	subscriber_id INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME, 
	lease_until DATETIME, 
	message_id VARCHAR(255), 
	smtp_response TEXT, 
	sent_at DATETIME, updated_at DATETIME, lease_token VARCHAR(32), variant INTEGER, due_at DATETIME, 
	FOREIGN KEY(issue_id) REFERENCES issue (id), 
	FOREIGN KEY(subscriber_id) REFERENCES subscriber (id), 
	PRIMARY KEY (id), 
	UNIQUE (issue_id, subscriber_id)
);
CREATE TABLE edition (
	id INTEGER NOT NULL, 
	issue_id INTEGER NOT NULL, 
	language VARCHAR(35) NOT NULL, 
	subject TEXT NOT NULL, 
	preheader TEXT NOT NULL, 
	intro_md TEXT NOT NULL, 
	title TEXT NOT NULL, 
	section_titles JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	FOREIGN KEY(issue_id) REFERENCES issue (id) ON DELETE CASCADE, 
	PRIMARY KEY (id), 
	UNIQUE (issue_id, language)
);
CREATE TABLE edition_item (
	edition_id INTEGER NOT NULL, 
	item_id INTEGER NOT NULL, 
	headline TEXT NOT NULL, 
	blurb TEXT NOT NULL, image_alt TEXT DEFAULT '' NOT NULL, 
	FOREIGN KEY(edition_id) REFERENCES edition (id) ON DELETE CASCADE, 
	FOREIGN KEY(item_id) REFERENCES issueitem (id) ON DELETE CASCADE, 
	PRIMARY KEY (edition_id, item_id)
);
CREATE TABLE editornewsletterrole (
	id INTEGER NOT NULL, 
	user_id INTEGER NOT NULL, 
	newsletter_id INTEGER NOT NULL, 
	role VARCHAR(20) NOT NULL, 
	FOREIGN KEY(newsletter_id) REFERENCES newsletter (id), 
	FOREIGN KEY(user_id) REFERENCES editoruser (id), 
	PRIMARY KEY (id), 
	UNIQUE (user_id, newsletter_id)
);
CREATE TABLE editorrecoverycode (
	id INTEGER NOT NULL, 
	user_id INTEGER NOT NULL, 
	code_hash VARCHAR(64) NOT NULL, 
	used_at DATETIME, 
	FOREIGN KEY(user_id) REFERENCES editoruser (id), 
	PRIMARY KEY (id)
);
CREATE TABLE editorsession (
	id VARCHAR(64) NOT NULL, 
	user_id INTEGER NOT NULL, 
	csrf_token VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	FOREIGN KEY(user_id) REFERENCES editoruser (id), 
	PRIMARY KEY (id)
);
CREATE TABLE editoruser (
	id INTEGER NOT NULL, 
	email VARCHAR(320) NOT NULL, 
	name VARCHAR NOT NULL, 
	password_hash VARCHAR(255) NOT NULL, 
	created_at DATETIME NOT NULL, 
	last_login_at DATETIME, 
	disabled_at DATETIME, totp_secret VARCHAR(255), totp_enabled_at DATETIME, totp_last_step BIGINT, role VARCHAR(20) DEFAULT 'admin' NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE engagement_event (
	id INTEGER NOT NULL, 
	issue_id INTEGER NOT NULL, 
	subscriber_id INTEGER NOT NULL, 
	link_id INTEGER, 
	kind VARCHAR(8) NOT NULL, 
	verdict VARCHAR(8) NOT NULL, 
	rule VARCHAR(40) NOT NULL, 
	at DATETIME NOT NULL, 
	variant INTEGER, 
	FOREIGN KEY(issue_id) REFERENCES issue (id), 
	FOREIGN KEY(link_id) REFERENCES issue_link (id), 
	FOREIGN KEY(subscriber_id) REFERENCES subscriber (id), 
	PRIMARY KEY (id)
);
CREATE TABLE engagement_tally (
	id INTEGER NOT NULL, 
	issue_id INTEGER NOT NULL, 
	link_id INTEGER, 
	kind VARCHAR(8) NOT NULL, 
	verdict VARCHAR(8) NOT NULL, 
	variant INTEGER, 
	events INTEGER NOT NULL, 
	uniques INTEGER NOT NULL, 
	folded_at DATETIME NOT NULL, 
	FOREIGN KEY(issue_id) REFERENCES issue (id), 
	FOREIGN KEY(link_id) REFERENCES issue_link (id), 
	PRIMARY KEY (id)
);
CREATE TABLE importjob (
	id INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	filename VARCHAR(255) NOT NULL, 
	created_by VARCHAR(255) NOT NULL, 
	size_bytes INTEGER NOT NULL, 
	total_rows INTEGER NOT NULL, 
	processed_rows INTEGER NOT NULL, 
	processed_bytes INTEGER NOT NULL, 
	columns JSON NOT NULL, 
	newsletters JSON NOT NULL, 
	existing VARCHAR(16) NOT NULL, 
	report JSON NOT NULL, 
	failure TEXT, 
	created_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, attempts INTEGER DEFAULT '0' NOT NULL, heartbeat_at DATETIME, 
	PRIMARY KEY (id)
);
CREATE TABLE importupload (
	job_id INTEGER NOT NULL, 
	data BLOB NOT NULL, 
	FOREIGN KEY(job_id) REFERENCES importjob (id), 
	PRIMARY KEY (job_id)
);
CREATE TABLE "issue" (
	id INTEGER NOT NULL, 
	newsletter_id INTEGER NOT NULL, 
	number INTEGER NOT NULL, 
	title VARCHAR NOT NULL, 
	subject VARCHAR, 
	preheader VARCHAR NOT NULL, 
	intro_md TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	scheduled_at DATETIME, 
	send_started_at DATETIME, 
	sent_at DATETIME, 
	status_reason VARCHAR, 
	created_at DATETIME NOT NULL, 
	status_changed_at DATETIME, 
	approved_by VARCHAR(320), 
	approved_at DATETIME, 
	kind VARCHAR(16) DEFAULT 'issue' NOT NULL, 
	segment_id INTEGER, breaker_probe_at DATETIME, local_time VARCHAR(5), 
	CONSTRAINT fk_issue_segment_id_segment FOREIGN KEY(segment_id) REFERENCES segment (id), 
	FOREIGN KEY(newsletter_id) REFERENCES newsletter (id), 
	PRIMARY KEY (id), 
	UNIQUE (newsletter_id, number)
);
CREATE TABLE issue_counter (
	issue_id INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	shard INTEGER NOT NULL, 
	n BIGINT NOT NULL, 
	PRIMARY KEY (issue_id, status, shard)
);
CREATE TABLE issue_link (
	id INTEGER NOT NULL, 
	issue_id INTEGER NOT NULL, 
	n INTEGER NOT NULL, 
	url TEXT NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	article_id INTEGER, 
	section VARCHAR(200), 
	position INTEGER, 
	FOREIGN KEY(article_id) REFERENCES article (id), 
	FOREIGN KEY(issue_id) REFERENCES issue (id), 
	PRIMARY KEY (id), 
	UNIQUE (issue_id, n)
);
CREATE TABLE issuecomment (
	id INTEGER NOT NULL, 
	issue_id INTEGER NOT NULL, 
	item_id INTEGER, 
	author VARCHAR(320) NOT NULL, 
	body TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	FOREIGN KEY(issue_id) REFERENCES issue (id), 
	PRIMARY KEY (id)
);
CREATE TABLE issueitem (
	id INTEGER NOT NULL, 
	section_id INTEGER NOT NULL, 
	article_id INTEGER NOT NULL, 
	position INTEGER NOT NULL, 
	blurb TEXT, 
	FOREIGN KEY(article_id) REFERENCES article (id), 
	FOREIGN KEY(section_id) REFERENCES issuesection (id), 
	PRIMARY KEY (id)
);
CREATE TABLE issuesection (
	id INTEGER NOT NULL, 
	issue_id INTEGER NOT NULL, 
	title VARCHAR NOT NULL, 
	position INTEGER NOT NULL, 
	FOREIGN KEY(issue_id) REFERENCES issue (id), 
	PRIMARY KEY (id)
);
CREATE TABLE "newsletter" (
	id INTEGER NOT NULL, 
	slug VARCHAR(80) NOT NULL, 
	name VARCHAR NOT NULL, 
	from_name VARCHAR NOT NULL, 
	from_email VARCHAR NOT NULL, 
	reply_to VARCHAR, 
	postal_address VARCHAR NOT NULL, 
	description TEXT NOT NULL, 
	website_url VARCHAR NOT NULL, 
	membership_url VARCHAR NOT NULL, 
	brand_color VARCHAR NOT NULL, 
	created_at DATETIME NOT NULL, 
	language VARCHAR(35) DEFAULT 'en' NOT NULL, 
	time_zone VARCHAR(64) DEFAULT 'UTC' NOT NULL, 
	logo_url VARCHAR(2000) DEFAULT ('') NOT NULL, 
	masthead VARCHAR DEFAULT ('') NOT NULL, 
	footer_text TEXT DEFAULT ('') NOT NULL, 
	membership_cta BOOLEAN DEFAULT 0 NOT NULL, 
	membership_text VARCHAR DEFAULT ('') NOT NULL, 
	membership_button VARCHAR DEFAULT 'Become a member' NOT NULL, 
	default_sections JSON DEFAULT '[]' NOT NULL, 
	requires_review BOOLEAN DEFAULT 0 NOT NULL, 
	signup_pitch VARCHAR(200) DEFAULT ('') NOT NULL, 
	layout VARCHAR(16) DEFAULT 'digest' NOT NULL, 
	font VARCHAR(16) DEFAULT 'serif' NOT NULL, 
	story_images VARCHAR(16) DEFAULT 'thumbnail' NOT NULL, 
	spam_threshold FLOAT DEFAULT '5.0' NOT NULL, 
	track_clicks BOOLEAN DEFAULT 0 NOT NULL, 
	track_opens BOOLEAN DEFAULT 0 NOT NULL, 
	relay VARCHAR(64) DEFAULT '' NOT NULL, missing_translation VARCHAR(16) DEFAULT 'fallback' NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE newsletterwelcome (
	newsletter_id INTEGER NOT NULL, 
	issue_id INTEGER, 
	enabled BOOLEAN NOT NULL, 
	with_latest BOOLEAN NOT NULL, 
	updated_at DATETIME NOT NULL, 
	FOREIGN KEY(issue_id) REFERENCES issue (id), 
	FOREIGN KEY(newsletter_id) REFERENCES newsletter (id), 
	PRIMARY KEY (newsletter_id)
);
CREATE TABLE relay_health (
	name VARCHAR(64) NOT NULL, 
	out_until DATETIME, 
	reason VARCHAR(1000) NOT NULL, 
	outs INTEGER NOT NULL, 
	changed_at DATETIME NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE rendered_edition (
	issue_id INTEGER NOT NULL, 
	language VARCHAR(35) NOT NULL, 
	subject VARCHAR NOT NULL, 
	preheader VARCHAR NOT NULL, 
	html TEXT NOT NULL, 
	text TEXT NOT NULL, 
	compiled_at DATETIME NOT NULL, 
	FOREIGN KEY(issue_id) REFERENCES issue (id) ON DELETE CASCADE, 
	PRIMARY KEY (issue_id, language)
);
CREATE TABLE renderedissue (
	issue_id INTEGER NOT NULL, 
	subject VARCHAR NOT NULL, 
	preheader VARCHAR NOT NULL, 
	html TEXT NOT NULL, 
	text TEXT NOT NULL, 
	compiled_at DATETIME NOT NULL, 
	FOREIGN KEY(issue_id) REFERENCES issue (id), 
	PRIMARY KEY (issue_id)
);
CREATE TABLE segment (
	id INTEGER NOT NULL, 
	newsletter_id INTEGER, 
	name VARCHAR(200) NOT NULL, 
	rules JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	created_by VARCHAR(320) NOT NULL, 
	FOREIGN KEY(newsletter_id) REFERENCES newsletter (id), 
	PRIMARY KEY (id)
);
CREATE TABLE source (
	id INTEGER NOT NULL, 
	newsletter_id INTEGER NOT NULL, 
	kind VARCHAR(8) NOT NULL, 
	url VARCHAR(2000) NOT NULL, 
	tag VARCHAR(200) NOT NULL, 
	section VARCHAR(200) NOT NULL, 
	author VARCHAR(200) NOT NULL, 
	etag VARCHAR(500) NOT NULL, 
	last_modified VARCHAR(100) NOT NULL, 
	checked_at DATETIME, 
	changed_at DATETIME, 
	last_result TEXT NOT NULL, 
	created_at DATETIME NOT NULL, fetch_minutes INTEGER DEFAULT '30' NOT NULL, 
	FOREIGN KEY(newsletter_id) REFERENCES newsletter (id), 
	PRIMARY KEY (id)
);
CREATE TABLE source_article (
	id INTEGER NOT NULL, 
	source_id INTEGER NOT NULL, 
	article_id INTEGER NOT NULL, 
	seen_at DATETIME NOT NULL, 
	FOREIGN KEY(article_id) REFERENCES article (id), 
	FOREIGN KEY(source_id) REFERENCES source (id), 
	PRIMARY KEY (id), 
	UNIQUE (source_id, article_id)
);
CREATE TABLE subject_test (
	issue_id INTEGER NOT NULL, 
	variants JSON NOT NULL, 
	metric VARCHAR(8) NOT NULL, 
	wait_seconds INTEGER NOT NULL, 
	decide_at DATETIME, 
	winner INTEGER, 
	decided_at DATETIME, 
	decided_by VARCHAR(320), 
	figures JSON NOT NULL, 
	reason TEXT, 
	created_at DATETIME NOT NULL, 
	FOREIGN KEY(issue_id) REFERENCES issue (id), 
	PRIMARY KEY (issue_id)
);
CREATE TABLE "subscriber" (
	id INTEGER NOT NULL, 
	email VARCHAR(320) NOT NULL, 
	name VARCHAR NOT NULL, 
	attributes JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	email_hash VARCHAR(64) NOT NULL, language VARCHAR(35), time_zone VARCHAR(64), 
	PRIMARY KEY (id)
);
CREATE TABLE "subscriberevent" (
	id INTEGER NOT NULL, 
	subscriber_id INTEGER NOT NULL, 
	newsletter_id INTEGER, 
	kind VARCHAR(32) NOT NULL, 
	at DATETIME NOT NULL, 
	ip VARCHAR(64), 
	user_agent VARCHAR(500), 
	source VARCHAR(2000), 
	consent_text_version VARCHAR(32), 
	detail JSON NOT NULL, 
	FOREIGN KEY(newsletter_id) REFERENCES newsletter (id), 
	FOREIGN KEY(subscriber_id) REFERENCES subscriber (id), 
	PRIMARY KEY (id)
);
CREATE TABLE subscribertag (
	id INTEGER NOT NULL, 
	subscriber_id INTEGER NOT NULL, 
	tag VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	FOREIGN KEY(subscriber_id) REFERENCES subscriber (id), 
	PRIMARY KEY (id), 
	UNIQUE (tag, subscriber_id)
);
CREATE TABLE subscription (
	id INTEGER NOT NULL, 
	subscriber_id INTEGER NOT NULL, 
	newsletter_id INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	consent_at DATETIME, 
	consent_ip VARCHAR, 
	consent_user_agent VARCHAR, 
	consent_source VARCHAR, 
	consent_text_version VARCHAR, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	unsubscribed_at DATETIME, confirmation_sent_at DATETIME, soft_bounces INTEGER DEFAULT '0' NOT NULL, last_bounce_at DATETIME, 
	FOREIGN KEY(newsletter_id) REFERENCES newsletter (id), 
	FOREIGN KEY(subscriber_id) REFERENCES subscriber (id), 
	PRIMARY KEY (id), 
	UNIQUE (subscriber_id, newsletter_id)
);
CREATE TABLE suppression (
	id INTEGER NOT NULL, 
	email_hash VARCHAR(64) NOT NULL, 
	reason VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE webhookdelivery (
	id INTEGER NOT NULL, 
	endpoint_id INTEGER NOT NULL, 
	event_type VARCHAR(40) NOT NULL, 
	payload JSON NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME, 
	last_status_code INTEGER, 
	last_error TEXT, 
	created_at DATETIME NOT NULL, 
	delivered_at DATETIME, 
	FOREIGN KEY(endpoint_id) REFERENCES webhookendpoint (id), 
	PRIMARY KEY (id)
);
CREATE TABLE webhookendpoint (
	id INTEGER NOT NULL, 
	url VARCHAR(2000) NOT NULL, 
	events JSON NOT NULL, 
	secret VARCHAR(100) NOT NULL, 
	active BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_auditentry_action ON auditentry (action);
CREATE INDEX ix_auditentry_at ON auditentry (at);
CREATE INDEX ix_autopilot_run_newsletter_id ON autopilot_run (newsletter_id);
CREATE INDEX ix_bouncereceipt_issue_kind ON bouncereceipt (issue_id, kind);
CREATE INDEX ix_bouncereceipt_source_kind ON bouncereceipt (source, kind);
CREATE INDEX ix_confirmationoutbox_relayed_next ON confirmationoutbox (relayed_at, next_attempt_at);
CREATE INDEX ix_confirmationoutbox_subscriber_id ON confirmationoutbox (subscriber_id);
CREATE INDEX ix_confirmationoutbox_unsent ON confirmationoutbox (relayed_at) WHERE sent_at IS NULL;
CREATE INDEX ix_delivery_issue_sent_at ON delivery (issue_id, sent_at);
CREATE INDEX ix_delivery_issue_status_due ON delivery (issue_id, status, due_at, id);
CREATE INDEX ix_delivery_issue_status_id ON delivery (issue_id, status, id);
CREATE INDEX ix_delivery_subscriber_id ON delivery (subscriber_id);
CREATE INDEX ix_edition_issue_id ON edition (issue_id);
CREATE INDEX ix_editornewsletterrole_user_id ON editornewsletterrole (user_id);
CREATE INDEX ix_editorrecoverycode_user_id ON editorrecoverycode (user_id);
CREATE INDEX ix_editorsession_user_id ON editorsession (user_id);
CREATE INDEX ix_engagement_event_report ON engagement_event (issue_id, kind, verdict, subscriber_id, link_id, rule);
CREATE INDEX ix_engagement_event_subscriber ON engagement_event (subscriber_id);
CREATE INDEX ix_engagement_tally_issue ON engagement_tally (issue_id, kind, verdict);
CREATE INDEX ix_importjob_status ON importjob (status);
CREATE INDEX ix_issue_link_issue_id ON issue_link (issue_id);
CREATE INDEX ix_issue_newsletter_id ON issue (newsletter_id);
CREATE INDEX ix_issue_status ON issue (status);
CREATE INDEX ix_issuecomment_issue_id ON issuecomment (issue_id);
CREATE INDEX ix_issueitem_article_id ON issueitem (article_id);
CREATE INDEX ix_issueitem_section_id ON issueitem (section_id);
CREATE INDEX ix_issuesection_issue_id ON issuesection (issue_id);
CREATE INDEX ix_segment_newsletter_id ON segment (newsletter_id);
CREATE INDEX ix_source_article_article_id ON source_article (article_id);
CREATE INDEX ix_source_article_source_id ON source_article (source_id);
CREATE INDEX ix_source_newsletter_id ON source (newsletter_id);
CREATE INDEX ix_subscriberevent_at_kind ON subscriberevent (at, kind, newsletter_id);
CREATE INDEX ix_subscriberevent_subscriber_at ON subscriberevent (subscriber_id, at);
CREATE INDEX ix_subscribertag_subscriber_id ON subscribertag (subscriber_id);
CREATE INDEX ix_subscription_newsletter_status ON subscription (newsletter_id, status, subscriber_id);
CREATE INDEX ix_subscription_status_subscriber ON subscription (status, subscriber_id);
CREATE INDEX ix_webhookdelivery_endpoint_id ON webhookdelivery (endpoint_id);
CREATE INDEX ix_webhookdelivery_status_next ON webhookdelivery (status, next_attempt_at);
CREATE TRIGGER issue_counter_delete AFTER DELETE ON delivery BEGIN INSERT INTO issue_counter (issue_id, status, shard, n) VALUES (OLD.issue_id, OLD.status, 0, -1) ON CONFLICT (issue_id, status, shard) DO UPDATE SET n = n + -1; END;
CREATE TRIGGER issue_counter_insert AFTER INSERT ON delivery BEGIN INSERT INTO issue_counter (issue_id, status, shard, n) VALUES (NEW.issue_id, NEW.status, 0, 1) ON CONFLICT (issue_id, status, shard) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER issue_counter_update AFTER UPDATE OF issue_id, status ON delivery WHEN OLD.issue_id IS NOT NEW.issue_id OR OLD.status IS NOT NEW.status BEGIN INSERT INTO issue_counter (issue_id, status, shard, n) VALUES (OLD.issue_id, OLD.status, 0, -1) ON CONFLICT (issue_id, status, shard) DO UPDATE SET n = n + -1; INSERT INTO issue_counter (issue_id, status, shard, n) VALUES (NEW.issue_id, NEW.status, 0, 1) ON CONFLICT (issue_id, status, shard) DO UPDATE SET n = n + 1; END;
CREATE UNIQUE INDEX ix_apitoken_name ON apitoken (name);
CREATE UNIQUE INDEX ix_apitoken_token_hash ON apitoken (token_hash);
CREATE UNIQUE INDEX ix_article_url ON article (url);
CREATE UNIQUE INDEX ix_editoruser_email ON editoruser (email);
CREATE UNIQUE INDEX ix_newsletter_slug ON newsletter (slug);
CREATE UNIQUE INDEX ix_subscriber_email ON subscriber (email);
CREATE UNIQUE INDEX ix_subscriber_email_hash ON subscriber (email_hash);
CREATE UNIQUE INDEX ix_suppression_email_hash ON suppression (email_hash);
