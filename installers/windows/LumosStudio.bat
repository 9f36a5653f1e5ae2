@echo off
rem Start Lumos Studio; the first start installs its dependencies into .venv
cd /d "%~dp0\..\.."
where py >nul 2>nul && (py -3 bootstrap.py app) || (python bootstrap.py app)
if errorlevel 1 pause
