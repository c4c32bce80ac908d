# Per-board facts shared by the board tools (sourced): the mpy-cross arch, the pyright stubs,
# and the hal/ modules of the board's port alone (step engines, flash regions; the others' are left out).
board_env() {
    case "$1" in
        rpi_pico) ARCH=armv6m; STUBS=rp2-rpi-pico; OWN_STEPS="steps_rp2 storage_rp2" ;;
        esp32) ARCH=xtensawin; STUBS=esp32; OWN_STEPS="steps_esp32 steps_timer storage_esp32" ;;
        pyboard) ARCH=armv7emsp; STUBS=stm32; OWN_STEPS="steps_pyb steps_timer storage_pyb" ;;
        *) echo "unknown BOARD '$1' (rpi_pico, esp32 or pyboard)" >&2; return 2 ;;
    esac
    ALL_STEPS="steps_rp2 steps_esp32 steps_pyb steps_timer storage_rp2 storage_esp32 storage_pyb"
    OTHER_STEPS=()
    for s in $ALL_STEPS; do
        [[ " $OWN_STEPS " == *" $s "* ]] || OTHER_STEPS+=("hal/$s.py")
    done
}
