/* tern/adhoc.h — placeholder: the ad-hoc command API is being written (issue 6). */
#ifndef TERN_ADHOC_H
#define TERN_ADHOC_H
#endif
