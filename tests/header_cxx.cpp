// The public header compiles alone as C++ (see meson.build).
#include <lazypage/lazypage.h>
#include <cstring>

int main()
{
	lp_config cfg;
	lp_config_init(&cfg);
	lp_vm *vm = nullptr;
	lp_vm_destroy(vm);
	lp_initializer init = {};
	return LP_VERSION_CHECK() != 0 || cfg.frames > (1u << 31) ||
	       init.reserved_int != 0;
}
