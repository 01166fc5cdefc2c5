/*
 * procstat.c: the process metrics that Prometheus clients conventionally
 * export (process_open_fds, process_max_fds, process_resident_memory_bytes,
 * process_cpu_seconds_total, process_start_time_seconds), read from
 * /proc/self for the proxy, the process that serves /metrics and holds
 * the sessions; and socksgw_build_info.
 */
#include <sys/resource.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"

/* Seconds since the epoch at which the system booted (btime). */
static double
procstat_boot_time(void)
{
	char		 line[256];
	double		 btime = 0;
	FILE		*f;

	if ((f = fopen("/proc/stat", "r")) == NULL)
		return (0);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "btime %lf", &btime) == 1)
			break;
	fclose(f);
	return (btime);
}

static int
procstat_open_fds(void)
{
	struct dirent	*de;
	DIR		*d;
	int		 n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return (-1);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return (n - 1);		/* not the descriptor that reads the folder */
}

void
procstat_prometheus(FILE *f)
{
	unsigned long long	 utime, stime, start, rss;
	struct rlimit		 rl;
	char			 buf[1024], *p;
	long			 tick = sysconf(_SC_CLK_TCK);
	long			 page = sysconf(_SC_PAGESIZE);
	FILE			*sf;
	int			 fds;

	fprintf(f, "# HELP socksgw_build_info The running build.\n"
	    "# TYPE socksgw_build_info gauge\n"
	    "socksgw_build_info{version=\"%s\"} 1\n", SOCKSGW_VERSION);
	if ((fds = procstat_open_fds()) >= 0)
		fprintf(f, "# HELP process_open_fds Open descriptors.\n"
		    "# TYPE process_open_fds gauge\nprocess_open_fds %d\n", fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		fprintf(f, "# HELP process_max_fds The descriptor limit.\n"
		    "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
		    (unsigned long long)rl.rlim_cur);
	if ((sf = fopen("/proc/self/stat", "r")) == NULL)
		return;
	p = fgets(buf, sizeof(buf), sf);
	fclose(sf);
	/* The command name may hold spaces and parentheses: after the last. */
	if (p == NULL || (p = strrchr(buf, ')')) == NULL || tick <= 0 ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
	    "%llu %*d %*d %*d %*d %*d %*d %llu %*u %llu", &utime, &stime,
	    &start, &rss) != 4)
		return;
	fprintf(f, "# HELP process_cpu_seconds_total CPU time, user and "
	    "system.\n# TYPE process_cpu_seconds_total counter\n"
	    "process_cpu_seconds_total %.2f\n"
	    "# HELP process_resident_memory_bytes Resident memory.\n"
	    "# TYPE process_resident_memory_bytes gauge\n"
	    "process_resident_memory_bytes %llu\n"
	    "# HELP process_start_time_seconds Start time, since the epoch.\n"
	    "# TYPE process_start_time_seconds gauge\n"
	    "process_start_time_seconds %.2f\n",
	    (double)(utime + stime) / (double)tick, rss * (unsigned long long)page,
	    procstat_boot_time() + (double)start / (double)tick);
}
