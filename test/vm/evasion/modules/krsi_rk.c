// A test module doing what LKM rootkits do to hide (Diamorphine, Reptile), one way per `mode`, in its init
// or `delay_ms` after it (a workqueue: "hiding on command" later). Built under several names by
// test/vm/evasion/modules.ts (krsi_rk, krsi_pre, krsi_late, krsi_filt, krsi_fw, and `dummy` for a module
// named like an allowlisted one). A hidden module can never be unloaded: load it only in a throwaway VM.
//   mode 0: stays listed (unloadable: a decoy, the negative)
//   mode 1: list_del_init(&THIS_MODULE->list): gone from /proc/modules, still in /sys/module
//   mode 2: list_del + kobject_del(&THIS_MODULE->mkobj.kobj): gone from /proc/modules and /sys/module
//   mode 3: state = MODULE_STATE_UNFORMED: /proc/modules' show() skips it, the list entry stays (what a
//           filter on /proc/modules reads looks like); needs delay_ms (do_init_module sets LIVE after init)
//   mode 4: list_del, its list entry pointed at a private node that points back (so both neighbours point
//           at it: "linked"), kobject_del, and mod->name overwritten with `as` (a loaded module's name):
//           /proc/modules and /sys/module show only the real module of that name
//   delay_ms < 0: hide on command, when 1 is written to /sys/module/<name>/parameters/hide_now (modes 1, 3)
//   fw 1:   request_firmware("krsi-test.bin") delay_ms after load, its result in the fw_result parameter
#include <linux/module.h>
#include <linux/list.h>
#include <linux/kobject.h>
#include <linux/workqueue.h>
#include <linux/firmware.h>

static int mode;
module_param(mode, int, 0444);
static int delay_ms;
module_param(delay_ms, int, 0444);
static int fw;
module_param(fw, int, 0444);
static int fw_result = 1;
module_param(fw_result, int, 0444);

static char *as = "";
module_param(as, charp, 0444);

static struct delayed_work work;
/* mode 4's private list node: next and prev at THIS_MODULE->list */
static struct list_head fake;

static void hide(void)
{
	switch (mode) {
	case 1:
		list_del_init(&THIS_MODULE->list);
		break;
	case 2:
		list_del(&THIS_MODULE->list);
		kobject_del(&THIS_MODULE->mkobj.kobj);
		break;
	case 3:
		THIS_MODULE->state = MODULE_STATE_UNFORMED;
		break;
	case 4:
		list_del(&THIS_MODULE->list);
		fake.next = fake.prev = &THIS_MODULE->list;
		THIS_MODULE->list.next = THIS_MODULE->list.prev = &fake;
		kobject_del(&THIS_MODULE->mkobj.kobj);
		strscpy(THIS_MODULE->name, as, MODULE_NAME_LEN);
		break;
	}
}

/* "on command": a write to the hide_now parameter */
static int set_hide_now(const char *val, const struct kernel_param *kp)
{
	hide();
	return 0;
}
static const struct kernel_param_ops hide_now_ops = { .set = set_hide_now };
module_param_cb(hide_now, &hide_now_ops, NULL, 0200);

static void later(struct work_struct *w)
{
	if (fw) {
		const struct firmware *f = NULL;
		fw_result = request_firmware(&f, "krsi-test.bin", NULL);
		release_firmware(f);
	}
	hide();
}

static int __init krsi_rk_init(void)
{
	INIT_DELAYED_WORK(&work, later);
	if (delay_ms > 0)
		schedule_delayed_work(&work, msecs_to_jiffies(delay_ms));
	else if (delay_ms == 0)
		hide();   /* in init, as rootkits do; < 0: on command */
	return 0;
}

static void __exit krsi_rk_exit(void)
{
	cancel_delayed_work_sync(&work);
}

module_init(krsi_rk_init);
module_exit(krsi_rk_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("krsi test: a module that hides itself from the module views");
