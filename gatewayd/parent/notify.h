/*
 * notify.h: what the parent tells systemd (Type=notify, NotifyAccess=main).
 */
#ifndef NOTIFY_H
#define NOTIFY_H

void	 notify_ready(void);
void	 notify_reloading(void);
void	 notify_reload_refused(void);
void	 notify_stopping(void);
void	 notify_status(unsigned);
void	 notify_forget(void);

#endif
