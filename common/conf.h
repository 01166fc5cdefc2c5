/*
 * conf.h: gatewayd.conf, parsed (conf.c). Read by gatewayd and socksctl
 * alike: socksctl finds the databases and the control socket here.
 */
#ifndef CONF_H
#define CONF_H

#include <stdatomic.h>
#include <stddef.h>

#include "addr.h"

#define GW_DEFAULT_CONF		"/etc/socksgw/gatewayd.conf"
#define GW_RUNTIME_DIR		"/run/socksgw"
#define GW_MAX_SESSIONS		10000000	/* max_sessions at most */
#define GW_AUDIT_USER		"socksgw-audit"	/* audit_user's default */
#define GW_MAX_LISTEN		64
#define GW_MAX_WORKERS		64
#define GW_NODE_NAME_MAX	64	/* node_name: bytes at most */
/* A fleet node's copy of the central policy, unless policy_snapshot says */
#define CONF_POLICY_SNAPSHOT	"/var/lib/socksgw/snapshot/policy.db"

/* auth: login methods, a set ("auth pam gssapi"); none is the empty set */
enum conf_auth { AUTH_NONE = 0, AUTH_PAM = 0x1, AUTH_GSSAPI = 0x2 };

struct conf_listen {
	struct sockaddr_storage	 cl_ss;
	socklen_t		 cl_len;
	char			 cl_text[ADDR_STRLEN];
	/* `listen ADDR:PORT proxy_protocol`: behind a load balancer */
	int			 cl_proxy;
};

/* Address ranges a keyword allows (metrics_allow, pac_allow). */
struct conf_cidrs {
	struct addr_cidr	 cc_list[GW_MAX_LISTEN];
	size_t			 cc_n;		/* 0: loopback only */
};
int	 conf_cidrs_allow(const struct conf_cidrs *, const struct sockaddr *);

struct conf {
	_Atomic int		 c_refs;
	char			*c_path;
	struct conf_listen	 c_listen[GW_MAX_LISTEN];
	size_t			 c_nlisten;
	int			 c_auth;		/* AUTH_* flags */
	char			*c_pam_service;
	char			*c_krb5_keytab;
	char			*c_krb5_service;	/* HTTP/host */
	char			*c_krb5_rcache;		/* replay cache file */
	int			 c_krb5_min_uid;	/* below: refused */
	int			 c_auth_workers;
	int			 c_auth_fail_limit;	/* failures ... */
	int			 c_auth_fail_window;	/* ... within seconds */
	int			 c_auth_lockout;	/* then refused, seconds */
	int			 c_auth_client_fail_limit; /* per client prefix */
	int			 c_auth_client_inflight;	/* in PAM at once */
	int			 c_auth_client_queue;	/* waiting at most */
	int			 c_auth_ipv6_prefix;	/* a client is this /N */
	int			 c_auth_cache_ttl;	/* 0: no cache */
	char			*c_policy_db;	/* the SQLite file judged by */
	char			*c_policy_central;	/* postgresql:// URL */
	char			*c_policy_snapshot;	/* as configured */
	int			 c_policy_max_age;	/* seconds */
	char			*c_audit_db;
	char			*c_audit_user;		/* auditd's account */
	int			 c_audit_queue;
	size_t			 c_audit_cache_size;	/* the writer's SQLite cache */
	int			 c_audit_block;		/* audit_failure block */
	int			 c_audit_retention_days;
	int			 c_audit_syslog;
	char			*c_audit_syslog_socket;
	int			 c_audit_syslog_pen;
	char			*c_audit_central;	/* postgresql:// URL */
	char			*c_geoip_db;
	char			*c_geoip_path;	/* "country iso_code" */
	char			*c_timezone;
	char			*c_resolv_conf;
	char			*c_hosts_file;
	char			*c_control_socket;
	char			*c_control_group;
	struct conf_listen	 c_metrics;	/* metrics_listen */
	int			 c_has_metrics;
	struct conf_cidrs	 c_metrics_allow;
	struct conf_cidrs	 c_pac_allow;
	struct conf_cidrs	 c_proxy_trusted;	/* balancers */
	int			 c_proxy_timeout;	/* s, to the header */
	int			 c_proxy_pending;	/* per balancer */
	struct conf_cidrs	 c_advertise;	/* for UDP and BIND replies */
	char			*c_node_name;	/* in every audit record */
	int			 c_handshake_per_client;	/* 0: auto */
	char			*c_runtime_dir;
	char			*c_user;
	int			 c_workers;
	int			 c_cpu_affinity;	/* steer.c */
	int			 c_handshake_timeout;
	int			 c_connect_timeout;
	int			 c_bind_timeout;
	int			 c_idle_timeout;
	int			 c_shutdown_grace;
	int			 c_max_sessions;
	size_t			 c_relay_buffer;
	int			 c_log_verbose;
	int			 c_log_sessions;	/* a line per close */
	int			 c_socks4;
	int			 c_http;	/* HTTP CONNECT on the port */
	char			*c_pac_file;
	char			*c_pac;		/* its text, read at load */
};

struct conf	*conf_load(const char *, char **);
int		 conf_audit_sessions(const struct conf *);
struct conf	*conf_default(void);
void		 conf_ref(struct conf *);
void		 conf_unref(struct conf *);
int		 conf_check_files(struct conf *, char **);
int		 conf_keep_restart(const struct conf *, struct conf *);
size_t		 conf_restart_needed(const struct conf *, const struct conf *,
		    char *, size_t);

#endif
