/*
 * The printf subset behind sprint, sprintln, kpanic, kassert messages and
 * ksnprintf: %d %i %u %x %X %c %s %p %%, the flags '0', '-' and '#' (0x for
 * %x), a width (or '*'), a precision for %s, and the length modifiers hh h l
 * ll z. Unknown
 * conversions are printed as written, so a typo shows up in the output.
 */
#include "runtime.h"

void kt_sink_putc(struct kt_sink *sink, char c)
{
    if (sink->len == sink->cap) {
        if (sink->flush) sink->flush(sink);
        if (sink->len == sink->cap) { /* cut off: count it, drop it */
            sink->total++;
            return;
        }
    }
    sink->buf[sink->len++] = c;
    sink->total++;
}

static void put_repeat(struct kt_sink *sink, char c, int count)
{
    for (; count > 0; count--) kt_sink_putc(sink, c);
}

static void put_string(struct kt_sink *sink, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) kt_sink_putc(sink, s[i]);
}

struct spec {
    bool left;  /* '-': pad on the right */
    bool zero;  /* '0': pad numbers with zeros */
    bool alt;   /* '#': 0x before nonzero %x, 0X before %X */
    int width;
    int precision; /* -1: none */
};

/* Pads `len` bytes of text (after an optional sign or prefix) to the width. */
static void put_padded(struct kt_sink *sink, const struct spec *spec, const char *prefix, const char *text, size_t len)
{
    size_t prefix_len = 0;
    while (prefix[prefix_len]) prefix_len++;
    int pad = spec->width - (int)(prefix_len + len);
    if (spec->left) {
        put_string(sink, prefix, prefix_len);
        put_string(sink, text, len);
        put_repeat(sink, ' ', pad);
    } else if (spec->zero) {
        put_string(sink, prefix, prefix_len); /* "-0042", "0x00ff" */
        put_repeat(sink, '0', pad);
        put_string(sink, text, len);
    } else {
        put_repeat(sink, ' ', pad);
        put_string(sink, prefix, prefix_len);
        put_string(sink, text, len);
    }
}

static void put_unsigned(struct kt_sink *sink, const struct spec *spec, const char *prefix, uint64_t value,
                         unsigned base, bool upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char text[24];
    size_t at = sizeof(text);
    do {
        text[--at] = digits[value % base];
        value /= base;
    } while (value != 0);
    put_padded(sink, spec, prefix, text + at, sizeof(text) - at);
}

enum length { LEN_HH, LEN_H, LEN_INT, LEN_L, LEN_LL, LEN_Z };

static uint64_t unsigned_arg(va_list *args, enum length length)
{
    switch (length) {
    case LEN_HH: return (unsigned char)va_arg(*args, unsigned int);
    case LEN_H: return (unsigned short)va_arg(*args, unsigned int);
    case LEN_INT: return va_arg(*args, unsigned int);
    case LEN_L: return va_arg(*args, unsigned long);
    case LEN_LL: return va_arg(*args, unsigned long long);
    case LEN_Z: return va_arg(*args, size_t);
    }
    return 0;
}

static int64_t signed_arg(va_list *args, enum length length)
{
    switch (length) {
    case LEN_HH: return (signed char)va_arg(*args, int);
    case LEN_H: return (short)va_arg(*args, int);
    case LEN_INT: return va_arg(*args, int);
    case LEN_L: return va_arg(*args, long);
    case LEN_LL: return va_arg(*args, long long);
    case LEN_Z: return (int64_t)va_arg(*args, size_t); /* %zd: ssize_t */
    }
    return 0;
}

static int parse_number(const char **fmt)
{
    int n = 0;
    while (**fmt >= '0' && **fmt <= '9') n = n * 10 + (*(*fmt)++ - '0');
    return n;
}

void kt_format(struct kt_sink *sink, const char *fmt, va_list ap)
{
    /* A va_list may be an array type: work on a copy through a pointer. */
    va_list args;
    va_copy(args, ap);
    while (*fmt) {
        if (*fmt != '%') {
            kt_sink_putc(sink, *fmt++);
            continue;
        }
        const char *start = fmt++;
        struct spec spec = { .left = false, .zero = false, .alt = false, .width = 0, .precision = -1 };
        for (;; fmt++) {
            if (*fmt == '-') spec.left = true;
            else if (*fmt == '0') spec.zero = true;
            else if (*fmt == '#') spec.alt = true;
            else break;
        }
        if (*fmt == '*') {
            fmt++;
            spec.width = va_arg(args, int);
            if (spec.width < 0) {
                spec.left = true;
                spec.width = -spec.width;
            }
        } else {
            spec.width = parse_number(&fmt);
        }
        if (*fmt == '.') {
            fmt++;
            if (*fmt == '*') {
                fmt++;
                spec.precision = va_arg(args, int);
            } else {
                spec.precision = parse_number(&fmt);
            }
        }
        enum length length = LEN_INT;
        if (*fmt == 'h') {
            fmt++;
            length = LEN_H;
            if (*fmt == 'h') {
                fmt++;
                length = LEN_HH;
            }
        } else if (*fmt == 'l') {
            fmt++;
            length = LEN_L;
            if (*fmt == 'l') {
                fmt++;
                length = LEN_LL;
            }
        } else if (*fmt == 'z') {
            fmt++;
            length = LEN_Z;
        }
        char conversion = *fmt;
        if (conversion == '\0') { /* a lone '%' at the end */
            put_string(sink, start, (size_t)(fmt - start));
            break;
        }
        fmt++;
        switch (conversion) {
        case 'd':
        case 'i': {
            int64_t value = signed_arg(&args, length);
            /* Negate as unsigned: INT64_MIN has no positive counterpart. */
            uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
            put_unsigned(sink, &spec, value < 0 ? "-" : "", magnitude, 10, false);
            break;
        }
        case 'u':
            put_unsigned(sink, &spec, "", unsigned_arg(&args, length), 10, false);
            break;
        case 'x':
        case 'X': {
            uint64_t value = unsigned_arg(&args, length);
            const char *prefix = spec.alt && value != 0 ? (conversion == 'X' ? "0X" : "0x") : "";
            put_unsigned(sink, &spec, prefix, value, 16, conversion == 'X');
            break;
        }
        case 'p':
            put_unsigned(sink, &spec, "0x", (uint64_t)(uintptr_t)va_arg(args, void *), 16, false);
            break;
        case 'c': {
            char c = (char)va_arg(args, int);
            spec.zero = false;
            put_padded(sink, &spec, "", &c, 1);
            break;
        }
        case 's': {
            const char *s = va_arg(args, const char *);
            if (!s) s = "(null)";
            size_t len = 0;
            while ((spec.precision < 0 || len < (size_t)spec.precision) && s[len]) len++;
            spec.zero = false;
            put_padded(sink, &spec, "", s, len);
            break;
        }
        case '%':
            kt_sink_putc(sink, '%');
            break;
        default:
            put_string(sink, start, (size_t)(fmt - start));
            break;
        }
    }
    va_end(args);
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list args)
{
    /* Keep one byte for the terminating NUL. */
    struct kt_sink sink = { .buf = buf, .cap = size ? size - 1 : 0, .len = 0, .total = 0, .flush = NULL };
    kt_format(&sink, fmt, args);
    if (size) buf[sink.len] = '\0';
    return (int)sink.total;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int n = kvsnprintf(buf, size, fmt, args);
    va_end(args);
    return n;
}
