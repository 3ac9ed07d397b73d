#ifndef HALOYD_CTL_CTL_H
#define HALOYD_CTL_CTL_H
#endif
