-- Quartz.NET's ADO.NET job store (clustered): the tables and columns its PostgreSQL delegate reads.
-- The daily and weekly digest triggers live here, so every newsletter process sees the same schedule.

create table qrtz_job_details (
    sched_name        text not null,
    job_name          text not null,
    job_group         text not null,
    description       text,
    job_class_name    text not null,
    is_durable        bool not null,
    is_nonconcurrent  bool not null,
    is_update_data    bool not null,
    requests_recovery bool not null,
    job_data          bytea,
    primary key (sched_name, job_name, job_group)
);

create table qrtz_triggers (
    sched_name             text not null,
    trigger_name           text not null,
    trigger_group          text not null,
    job_name               text not null,
    job_group              text not null,
    description            text,
    next_fire_time         bigint,
    prev_fire_time         bigint,
    priority               integer,
    trigger_state          text not null,
    trigger_type           text not null,
    start_time             bigint not null,
    end_time               bigint,
    calendar_name          text,
    misfire_instr          smallint,
    misfire_orig_fire_time bigint,
    execution_group        varchar(200),
    preferred_node         varchar(200),
    preferred_node_auto    bool not null default false,
    job_data               bytea,
    primary key (sched_name, trigger_name, trigger_group),
    foreign key (sched_name, job_name, job_group) references qrtz_job_details (sched_name, job_name, job_group)
);

create table qrtz_simple_triggers (
    sched_name      text not null,
    trigger_name    text not null,
    trigger_group   text not null,
    repeat_count    bigint not null,
    repeat_interval bigint not null,
    times_triggered bigint not null,
    primary key (sched_name, trigger_name, trigger_group),
    foreign key (sched_name, trigger_name, trigger_group) references qrtz_triggers (sched_name, trigger_name, trigger_group) on delete cascade
);

create table qrtz_simprop_triggers (
    sched_name    text not null,
    trigger_name  text not null,
    trigger_group text not null,
    str_prop_1    text,
    str_prop_2    text,
    str_prop_3    text,
    int_prop_1    integer,
    int_prop_2    integer,
    long_prop_1   bigint,
    long_prop_2   bigint,
    dec_prop_1    numeric,
    dec_prop_2    numeric,
    bool_prop_1   bool,
    bool_prop_2   bool,
    time_zone_id  text,
    primary key (sched_name, trigger_name, trigger_group),
    foreign key (sched_name, trigger_name, trigger_group) references qrtz_triggers (sched_name, trigger_name, trigger_group) on delete cascade
);

create table qrtz_cron_triggers (
    sched_name      text not null,
    trigger_name    text not null,
    trigger_group   text not null,
    cron_expression text not null,
    time_zone_id    text,
    primary key (sched_name, trigger_name, trigger_group),
    foreign key (sched_name, trigger_name, trigger_group) references qrtz_triggers (sched_name, trigger_name, trigger_group) on delete cascade
);

create table qrtz_blob_triggers (
    sched_name    text not null,
    trigger_name  text not null,
    trigger_group text not null,
    blob_data     bytea,
    primary key (sched_name, trigger_name, trigger_group),
    foreign key (sched_name, trigger_name, trigger_group) references qrtz_triggers (sched_name, trigger_name, trigger_group) on delete cascade
);

create table qrtz_calendars (
    sched_name    text not null,
    calendar_name text not null,
    calendar      bytea not null,
    primary key (sched_name, calendar_name)
);

create table qrtz_paused_trigger_grps (
    sched_name    text not null,
    trigger_group text not null,
    primary key (sched_name, trigger_group)
);

create table qrtz_fired_triggers (
    sched_name        text not null,
    entry_id          text not null,
    trigger_name      text not null,
    trigger_group     text not null,
    instance_name     text not null,
    fired_time        bigint not null,
    sched_time        bigint not null,
    priority          integer not null,
    state             text not null,
    job_name          text,
    job_group         text,
    is_nonconcurrent  bool not null,
    requests_recovery bool,
    execution_group   varchar(200),
    primary key (sched_name, entry_id)
);

create table qrtz_scheduler_state (
    sched_name        text not null,
    instance_name     text not null,
    last_checkin_time bigint not null,
    checkin_interval  bigint not null,
    primary key (sched_name, instance_name)
);

create table qrtz_locks (
    sched_name text not null,
    lock_name  text not null,
    primary key (sched_name, lock_name)
);

create index qrtz_j_req_recovery on qrtz_job_details (sched_name, requests_recovery);
create index qrtz_j_g_n on qrtz_job_details (sched_name, job_group, job_name);
create index qrtz_t_next_fire_time on qrtz_triggers (sched_name, next_fire_time);
create index qrtz_t_state on qrtz_triggers (sched_name, trigger_state);
create index qrtz_t_nft_st on qrtz_triggers (sched_name, trigger_state, next_fire_time);
create index qrtz_t_g_n on qrtz_triggers (sched_name, trigger_group, trigger_name);
create index qrtz_ft_trig_nm_gp on qrtz_fired_triggers (sched_name, trigger_name, trigger_group);
create index qrtz_ft_trig_inst_name on qrtz_fired_triggers (sched_name, instance_name);
create index qrtz_ft_job_req_recovery on qrtz_fired_triggers (requests_recovery);
