/* Test plugin in plain C, built for an ABI version this host does not speak
 * (0, older than any release). The host must refuse it before running any of
 * its code; the entry point below would make that visible by crashing. */
#include <stdlib.h>

#include "hearth/plugin.h"

HEARTH_PLUGIN_EXPORT const hearth_plugin_build_info hearth_plugin_build = {
    HEARTH_PLUGIN_MAGIC,
    (uint32_t)sizeof(hearth_plugin_build_info),
    0u,
    (uint32_t)sizeof(void*),
    "old_abi",
    "built for ABI version 0"};

HEARTH_PLUGIN_EXPORT hearth_result hearth_plugin_entry(const hearth_host_api* host,
                                                       const uint32_t* offered,
                                                       size_t offered_count, uint32_t* chosen,
                                                       hearth_plugin_hooks* hooks) {
  (void)host;
  (void)offered;
  (void)offered_count;
  (void)chosen;
  (void)hooks;
  abort(); /* never reached: the build block is refused first */
}
