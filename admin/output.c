/*
 * output.c: what socksctl prints. Tables are aligned for people; with
 * --json the same rows are an array of objects whose keys are the column
 * names. A column's first character says its JSON type: '#' a number,
 * '?' a boolean (yes/no in tables), '~' a value that "none" or nothing
 * leaves unset (null); any other a string. An empty number or boolean is
 * null too: JSON consumers never meet "yes", "none" or "" for them.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "escape.h"

struct table {
	int	 t_ncols;
	char	**t_cells;	/* row-major, the header row first */
	size_t	 t_nrows;
};

struct table *
table_new(int ncols, ...)
{
	struct table	*t;
	va_list		 ap;
	int		 i;

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->t_cells = calloc((size_t)ncols, sizeof(char *))) == NULL)
		ctl_error("out of memory");
	t->t_ncols = ncols;
	va_start(ap, ncols);
	for (i = 0; i < ncols; i++)
		t->t_cells[i] = strdup(va_arg(ap, const char *));
	va_end(ap);
	t->t_nrows = 1;
	return (t);
}

void
table_row(struct table *t, ...)
{
	va_list		 ap;
	const char	*v;
	int		 i;

	t->t_cells = reallocarray(t->t_cells, (t->t_nrows + 1) *
	    (size_t)t->t_ncols, sizeof(char *));
	if (t->t_cells == NULL)
		ctl_error("out of memory");
	va_start(ap, t);
	for (i = 0; i < t->t_ncols; i++) {
		v = va_arg(ap, const char *);
		if ((t->t_cells[t->t_nrows * (size_t)t->t_ncols + (size_t)i] =
		    strdup(v ? v : "")) == NULL)
			ctl_error("out of memory");
	}
	va_end(ap);
	t->t_nrows++;
}

/* Names in the data are attacker-chosen: escaped for JSON (escape.c). */
void
json_string(const char *s)
{
	char	 buf[ESC_FIELD_MAX * 6 + 3];

	esc_json(buf, sizeof(buf), s);
	fputs(buf, stdout);
}

static const char *
table_key(const char *h)
{
	return (h[0] == '#' || h[0] == '?' || h[0] == '~' ? h + 1 : h);
}

/* One cell as JSON, by its column's type. */
static void
table_json_value(const char *head, const char *v)
{
	if ((head[0] == '#' || head[0] == '?' || head[0] == '~') &&
	    (v[0] == '\0' || (head[0] == '~' && strcmp(v, "none") == 0)))
		printf("null");
	else if (head[0] == '#')
		printf("%s", v);
	else if (head[0] == '?')
		printf("%s", strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ?
		    "true" : "false");
	else
		json_string(v);
}

void
table_print(struct table *t, int json)
{
	size_t	 r, w[32] = { 0 }, len;
	int	 c;
	char	**row;

	if (json) {
		printf("[");
		for (r = 1; r < t->t_nrows; r++) {
			row = t->t_cells + r * (size_t)t->t_ncols;
			printf("%s{", r > 1 ? ",\n " : "");
			for (c = 0; c < t->t_ncols; c++) {
				printf("%s", c ? ", " : "");
				json_string(table_key(t->t_cells[c]));
				printf(": ");
				table_json_value(t->t_cells[c], row[c]);
			}
			printf("}");
		}
		printf("]\n");
	} else {
		/* No byte of the data may steer the admin's terminal. */
		for (r = 0; r < t->t_nrows * (size_t)t->t_ncols; r++) {
			char	 vis[ESC_FIELD_MAX];

			esc_log(vis, sizeof(vis), t->t_cells[r]);
			if (strcmp(vis, t->t_cells[r]) != 0) {
				free(t->t_cells[r]);
				if ((t->t_cells[r] = strdup(vis)) == NULL)
					ctl_error("out of memory");
			}
		}
		for (r = 0; r < t->t_nrows; r++)
			for (c = 0; c < t->t_ncols && c < 32; c++) {
				len = strlen(r == 0 ? table_key(t->t_cells[c]) :
				    t->t_cells[r * (size_t)t->t_ncols +
				    (size_t)c]);
				if (len > w[c])
					w[c] = len;
			}
		for (r = 0; r < t->t_nrows; r++) {
			row = t->t_cells + r * (size_t)t->t_ncols;
			for (c = 0; c < t->t_ncols; c++) {
				const char *v = r == 0 ? table_key(row[c]) :
				    row[c];

				for (len = 0; v[len] != '\0'; len++)
					putchar(r == 0 && v[len] >= 'a' &&
					    v[len] <= 'z' ? v[len] - 32 :
					    v[len]);
				if (c == t->t_ncols - 1)
					putchar('\n');
				else
					printf("%*s", (int)(w[c] - len + 2), "");
			}
		}
	}
	for (r = 0; r < t->t_nrows * (size_t)t->t_ncols; r++)
		free(t->t_cells[r]);
	free(t->t_cells);
	free(t);
}

/* One "key: value" line, or a JSON member (first: no leading comma). */
void
out_kv(int json, const char *key, const char *value, int first)
{
	if (json) {
		printf("%s", first ? "" : ", ");
		json_string(key);
		printf(": ");
		json_string(value);
	} else {
		char	 vis[ESC_FIELD_MAX];

		esc_log(vis, sizeof(vis), value);
		printf("%-12s %s\n", key, vis);
	}
}

/*
 * Text from a file or the command line, for a terminal: no byte of it
 * may steer one (a static buffer: one use per printf).
 */
const char *
term_text(const char *raw)
{
	static char	 vis[2048];

	esc_log(vis, sizeof(vis), raw);
	return (vis);
}

/* One word as the import tokenizer reads it back: bare when it can be. */
void
export_word(FILE *f, const char *w)
{
	const unsigned char	*p;
	int			 bare = w[0] != '\0' && w[0] != '#';

	for (p = (const unsigned char *)w; *p != '\0' && bare; p++)
		bare = isalnum(*p) || strchr("._:/@*+,=-", *p) != NULL;
	if (bare) {
		fputs(w, f);
		return;
	}
	fputc('"', f);
	for (p = (const unsigned char *)w; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

FILE *
text_open(struct text *t)
{
	t->t_buf = NULL;
	t->t_len = 0;
	if ((t->t_f = open_memstream(&t->t_buf, &t->t_len)) == NULL)
		ctl_error("out of memory");
	return (t->t_f);
}

/* The text, the caller's to free; its length in t_len. */
char *
text_close(struct text *t)
{
	if (fclose(t->t_f) != 0)
		ctl_error("out of memory");
	t->t_f = NULL;
	return (t->t_buf);
}
