#ifndef LEADERBOARD_CHIREDIS_SHIM_H
#define LEADERBOARD_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
