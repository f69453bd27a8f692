from callcenterd.cli import main

raise SystemExit(main())
