-- Which issues a reader still lacks, found without reading their whole history. A digest enqueue
-- used to probe the receipts once per published issue since the reader joined: a year of weekly
-- issues made each hourly slice fifty probes per reader. Now it finds the reader's anchor, the
-- newest issue of their window they hold, and takes every issue published after it; an issue older
-- than the anchor that they lack is listed in issues_owed, written where such a gap is made (a
-- delivery's receipts given back, a broadcast that passes over older issues). That rests on
-- publication times that follow the order in which issues were published: publishing takes a lock
-- and a time after every published issue's, so an issue published before another was visible to
-- every enqueue that saw the later one.

-- Publication times strictly increasing (two issues published in the same microsecond, or by a
-- node whose clock was behind, are moved apart), then unique.
do $$
declare
    r record;
    previous timestamptz := '-infinity';
begin
    for r in select id, published_at from issues where status = 'published' order by published_at, id loop
        if r.published_at <= previous then
            previous := previous + interval '1 microsecond';
            update issues set published_at = previous where id = r.id;
        else
            previous := r.published_at;
        end if;
    end loop;
end
$$;
drop index issues_published;
create unique index issues_published on issues (published_at) where status = 'published';

-- Issues given back to a reader, or passed over by a broadcast, older than what they hold: their
-- next digest takes them (and removes the row).
create table issues_owed (
    subscriber_id  bigint not null,
    issue_id       bigint not null,
    primary key (subscriber_id, issue_id)
);

-- The gaps of today's readers: each active reader's unreceived issues older than their anchor.
-- (Read while the receipts are still keyed by subscriber.)
insert into issues_owed (subscriber_id, issue_id)
select s.id, i.id
from subscribers s
cross join lateral (
    select max(a.published_at) as published_at
    from receipts rc join issues a on a.id = rc.issue_id
    where rc.subscriber_id = s.id and a.status = 'published' and a.published_at >= s.issues_from
) anchor
join issues i on i.status = 'published' and i.published_at >= s.issues_from and i.published_at < anchor.published_at
where s.status = 'active' and s.issues_from is not null
  and not exists (select 1 from receipts rc where rc.subscriber_id = s.id and rc.issue_id = i.id);

-- Receipts keyed by issue first: a slice's new receipts are all for the newest issue, so they land
-- in one part of the index (after a checkpoint, a key by subscriber had every slice rewrite nearly
-- every leaf page into the WAL: 181 MB for 41,666 readers with a year of history, now 9 MB), and
-- the per-issue reports read one range.
alter table receipts drop constraint receipts_pkey;
alter table receipts add primary key (issue_id, subscriber_id);

-- Forgetting a reader finds their receipts through the issues (one probe per issue).
create or replace function ledger_forget_subscribers() returns trigger language plpgsql as $$
begin
    delete from click_requests c using deliveries d, gone g where c.delivery_id = d.id and d.subscriber_id = g.id;
    insert into erased_deliveries (delivery_id) select d.id from deliveries d join gone g on d.subscriber_id = g.id;
    delete from receipts r using gone g, issues i where r.issue_id = i.id and r.subscriber_id = g.id;
    delete from issues_owed o using gone g where o.subscriber_id = g.id;
    delete from deliveries d using gone g where d.subscriber_id = g.id;
    return null;
end
$$;
