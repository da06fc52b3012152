-- Why a subscriber stopped receiving mail when it was not their own choice (e.g. the SMTP reply of a bounce).
alter table subscribers add column status_reason text;
